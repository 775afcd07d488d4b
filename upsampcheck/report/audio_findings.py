"""The findings of ``upsampcheck audio`` on one file: ``tonal`` (the worst locked grid line),
``locked`` (locked lines on no grid), ``stationary`` (spectral peaks that keep their frequency
but are not locked), ``offset`` (the DC)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..config import AudioThresholds
from .findings import Finding

if TYPE_CHECKING:
    from ..audio.results import AudioLine, FileResult


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


INAUDIBLE_LSB = 2.0
"""A grid pattern whose RMS in the quiet passages (every candidate on the grid) is at most this
many quantisation steps is at the format's own resolution (16-bit: −87 dBFS and below):
reported in LSB, inaudible."""

RANK = {"fail": 0, "warn": 1, "info": 2, "pass": 3}


def line_severity(line: AudioLine, t: AudioThresholds) -> str:
    """fail / warn / info for a locked line, by its level against the whole file and its
    prominence over the quiet passages' floor (never below the quantisation floor)."""
    quiet = line.quiet_prominence_db if line.quiet_prominence_db is not None else -math.inf
    if line.level_db > t.line_fail_db or quiet > t.quiet_fail_db:
        return "fail"
    if line.level_db > t.line_warn_db or quiet > t.quiet_warn_db:
        return "warn"
    return "info"


def escalate(severity: str, check: str, t: AudioThresholds) -> str:
    return "fail" if severity == "warn" and check in t.fail_on else severity


def _quiet_text(line: AudioLine) -> str:
    if line.quiet_prominence_db is None:
        return "hidden in the quiet passages"
    return f"{line.quiet_prominence_db:.1f} dB over the quiet passages' floor"


def _rate_text(line: AudioLine, result: FileResult) -> str:
    """`` (a multiple of fs/4 = 5512.5 Hz)``: the coarsest grid the line lies on."""
    if line.stage_rate_hz is None:
        return ""
    factor = round(result.info.sample_rate / line.stage_rate_hz)
    return f" (a multiple of fs/{factor} = {line.stage_rate_hz:g} Hz)"


def _lock_text(line: AudioLine) -> str:
    """``phase locked (R 0.93 over 160 frames), follows the program (r 0.81)``."""
    lock = line.lock
    if lock is None:
        return ""
    how = "follows the program" if lock.follows_program else "steady"
    return (
        f"phase locked (R {lock.resultant:.2f} over {lock.frames} frames), {how} "
        f"(r {lock.program_correlation:.2f})"
    )


def tonal_finding(result: FileResult, t: AudioThresholds) -> Finding:
    """The grid lines of one file, judged by the loudest (worst) of them."""
    grid = result.grid
    on = [line for line in result.lines if line.on_grid]
    if grid is None or not on:
        locked = result.locked_lines
        extra = f" ({len(locked)} locked line(s) on no grid)" if locked else ""
        return Finding("tonal", "pass", result.label, f"no upsampling grid in the lines{extra}")
    tones = [ln for ln in on if ln.probable_test_tone]
    judged = [ln for ln in on if not ln.probable_test_tone] or on
    worst = min(judged, key=lambda ln: (RANK[line_severity(ln, t)], -ln.level_db))
    severity = escalate(line_severity(worst, t), "tonal", t)
    if worst.probable_test_tone:  # nothing on the grid but the tone
        severity = "info"
    size = result.pattern_lsb
    inaudible = size is not None and size <= INAUDIBLE_LSB
    if inaudible:
        severity = "info"
    rates = ", ".join(
        f"{r.fs_in_hz:g} Hz ({r.lines})"
        for r in grid.rates
        if r.factor == grid.factor or r.lines > 2 * r.by_chance
    )
    message = (
        f"{len(on)} line(s) locked to the sample clock on the {grid.spacing_hz:.2f} Hz grid "
        f"(fs/{grid.factor}); worst {worst.freq_hz:.2f} Hz{_rate_text(worst, result)} at "
        f"{worst.level_db:.1f} dB re the file's RMS, {_quiet_text(worst)}, "
        f"{_lock_text(worst)}; stage input rates (lines): {rates}"
    )
    if size is not None:
        message += f"; the pattern is {size:.1f} LSB RMS" + (" (inaudible)" if inaudible else "")
    if tones:
        message += (
            f"; {tones[0].freq_hz:.2f} Hz at {tones[0].level_db:.1f} dB re the file's RMS is "
            "steady and holds most of the file: probably a test tone, left out of this judgement"
        )
    cause = (
        f"lines on multiples of fs/{grid.factor} that keep their phase to the sample clock are "
        f"what an upsampling stage leaves: a stage whose input runs at one of those rates has "
        f"unequal polyphase gains (transposed or subpixel convolution) or repeats a DC offset "
        f"(bias, ReLU) made before it; the stages after it multiply its rate by fs/rate"
    )
    if grid.explained == 1:
        cause += (
            "; one line alone may also be a test tone or a note synthesised at exactly that "
            "frequency"
        )
    fix = (
        "run `upsampcheck model` on the checkpoint to name the stage, then tie its polyphase "
        "gains (ICNR init, kernel length a multiple of the stride with equal phase sums, or "
        "interpolation + convolution) or remove the offset before it"
    )
    if severity == "info":
        cause = fix = ""
    if tones:
        cause = (cause + "; " if cause else "") + (
            f"{tones[0].freq_hz:.2f} Hz is probably a test tone: a tone at an exact multiple "
            f"of fs/{grid.factor} (1 kHz at 48 kHz is fs/48) and the pattern its rounding leaves"
        )
    return Finding(
        "tonal", severity, result.label, message, cause, fix, worst.freq_hz, worst.level_db
    )


def locked_finding(result: FileResult) -> Finding | None:
    """Locked lines that no grid explains: information, never a failure (a test tone at
    exactly ``m·fs/K``, a note synthesised there, a stage's line whose siblings are hidden)."""
    off = [line for line in result.locked_lines if not line.on_grid]
    if not off:
        return None
    loudest = off[0]
    p, q = loudest.lock.fraction
    message = (
        f"{len(off)} line(s) locked to the sample clock on no upsampling grid; loudest "
        f"{loudest.freq_hz:.2f} Hz ({p}·fs/{q}) at {loudest.level_db:.1f} dB re the file's RMS, "
        f"{_lock_text(loudest)}"
    )
    cause = (
        "a line exactly at m·fs/K keeps its phase to the sample clock: it may be a test tone "
        "(1 kHz at 48 kHz is fs/48) or a note synthesised at exactly that frequency, or a "
        "stage's line whose siblings the program hides"
    )
    return Finding(
        "locked", "info", result.label, message, cause, "", loudest.freq_hz, loudest.level_db
    )


def stationary_finding(result: FileResult) -> Finding | None:
    """Spectral lines that keep their frequency but are not locked to the sample clock:
    information (mains hum, a held tone, a pilot tone), never a failure."""
    off = result.stationary_lines
    if not off:
        return None
    loudest = off[0]
    message = (
        f"{len(off)} stationary line(s) not locked to the sample clock; loudest "
        f"{loudest.freq_hz:.1f} Hz at {loudest.level_db:.1f} dB re the file's RMS (hum, a held "
        "tone or a pilot tone?)"
    )
    return Finding(
        "stationary", "info", result.label, message, freq_hz=loudest.freq_hz,
        level_db=loudest.level_db,
    )  # fmt: skip


def offset_finding(result: FileResult, t: AudioThresholds) -> Finding:
    """The file's DC relative to its RMS."""
    dc = result.dc_db
    message = f"DC {dc:.1f} dB relative to the file's RMS" if dc > -200 else "no DC"
    if dc <= t.offset_warn_db:
        return Finding("offset", "pass", result.label, message, level_db=_round(dc, 2))
    return Finding(
        "offset",
        escalate("warn", "offset", t),
        result.label,
        message,
        "the output carries a constant offset (a bias after the last layer, or one the "
        "upsamplers passed through); it clicks at every start and stop",
        "remove the output bias or high-pass the output (a DC blocker)",
        0.0,
        dc,
    )


def file_findings(result: FileResult, t: AudioThresholds) -> list[Finding]:
    """tonal, locked (lines locked on no grid), stationary (not locked), offset."""
    found = [
        tonal_finding(result, t),
        locked_finding(result),
        stationary_finding(result),
        offset_finding(result, t),
    ]
    return [f for f in found if f is not None]
