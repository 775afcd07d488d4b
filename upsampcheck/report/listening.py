"""What a report offers to listen to: each stage's and the output's response to silence and to
the noise-like probe, normalised and at true level, and the output's sweep.

The excerpts come from the measurement (:attr:`~upsampcheck.measure.analysis.StageMeasurement.
excerpts`): interior samples of channel 0 at the stage's output rate. Browsers play WAV files
from about 3 kHz up, so an excerpt at a lower rate (the first stages of a vocoder run at a few
hundred Hz) is resampled band-limited by an integer factor to at least :data:`MIN_PLAY_RATE`:
an exact interpolation in the DFT domain, which adds no images (zero-order hold would add the
very artifacts the page is about). The page names both rates.

The response to the DC probe is offered too where that probe shows a tonal line (it is where
the transposed/subpixel buzz is loudest). Normalised clips have their mean removed first, so a
DC offset neither sets the gain nor plays as a step. Clips whose 16-bit samples are all zero
are dropped (a player of digital silence proves nothing); the page says so instead, next to
the stage's players (:func:`dropped_note`). The page stays small: every clip is cut so that all of
them together hold at most :data:`AUDIO_BUDGET_BYTES` of 16-bit samples, down to
:data:`MIN_SECONDS` each; stages beyond that get no clips, and a note says which.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..outputs.clips import Clip, normalised

MIN_PLAY_RATE = 8000.0
"""Excerpts at a lower rate are resampled by an integer factor to at least this rate."""
AUDIO_BUDGET_BYTES = 3_000_000
"""All clips of one page together: at most this many bytes of 16-bit samples (~4 MB base64)."""
MIN_SECONDS = 0.25
"""Clips are never cut shorter than this to fit the budget; whole stages are dropped instead."""
LISTEN_PROBES = {"silence": "response to silence", "noise": "response to the noise-like probe"}
DC_PROBE = {"dc": "response to the DC probe"}
OUTPUT_ONLY = {"sweep": "response to the exponential sweep"}


@dataclass(frozen=True)
class Source:
    """One place clips come from: a stage (or the output), its excerpts and their rate."""

    key: str
    stem: str
    excerpts: dict[str, np.ndarray]
    rate: float
    output: bool = False
    dc_lines: bool = False
    """The DC probe shows a tonal line here: its response is worth hearing."""


def clip_stem(name: str) -> str:
    """A stage name as a clip-file stem: lower case, ``[a-z0-9_-]`` only (``ups.0`` ->
    ``ups_0``, ``2:transposed`` -> ``2_transposed``)."""
    return re.sub(r"[^a-z0-9_-]+", "_", name.lower()).strip("_") or "stage"


def play_rate_factor(rate: float) -> int:
    """The smallest integer ``k`` with ``k * rate >= MIN_PLAY_RATE`` (1 at audio rates)."""
    return max(1, math.ceil(MIN_PLAY_RATE / rate - 1e-9))


def band_limited_upsample(x: np.ndarray, factor: int) -> np.ndarray:
    """``(T,) -> (factor * T,)``: ``x`` interpolated exactly in the DFT domain (its spectrum
    zero-padded, the Nyquist bin split), so the result holds no energy above the old Nyquist
    and ``y[factor * n] == x[n]``."""
    if factor == 1 or len(x) < 2:
        return np.asarray(x, dtype=np.float64)
    n = len(x)
    spectrum = np.fft.rfft(np.asarray(x, dtype=np.float64))
    if n % 2 == 0:
        spectrum[-1] /= 2  # the Nyquist bin is shared by +fs/2 and -fs/2
    padded = np.zeros(factor * n // 2 + 1, dtype=complex)
    padded[: len(spectrum)] = spectrum
    return np.fft.irfft(padded, factor * n) * factor


def audible(clip: Clip) -> bool:
    """True when the clip has a sample that 16-bit PCM does not round to zero."""
    return bool(np.any(np.abs(clip.samples) >= 0.5 / 32767))


def dropped_note(key: str, words: str, normalised_too: bool) -> str:
    """The page's sentence for a clip that was left out (it begins with ``key: ``, so the
    page can show it beside that stage's players)."""
    if normalised_too:
        return f"{key}: no player for the {words}: it is digital silence at 16 bits"
    return (
        f"{key}: no normalised player for the {words}: with its mean removed it is constant "
        "(a pure DC offset, nothing to hear but a step)"
    )


def source_clips(source: Source, seconds: float, dropped: list[str] | None = None) -> list[Clip]:
    """A source's clips: for silence and noise (the DC probe where it shows lines; the sweep
    for the output) one at true level and one normalised; digital silence left out, with a
    sentence in ``dropped``."""
    probes = dict(LISTEN_PROBES)
    if source.dc_lines:
        probes.update(DC_PROBE)
    if source.output:
        probes.update(OUTPUT_ONLY)
    factor = play_rate_factor(source.rate)
    found: list[Clip] = []
    for probe, words in probes.items():
        if probe not in source.excerpts:
            continue
        samples = source.excerpts[probe][: max(1, round(seconds * source.rate))]
        samples = band_limited_upsample(samples, factor)
        true = Clip(f"{source.stem}_{probe}", words, samples, source.rate * factor, 0.0)
        kept = [c for c in (true, normalised(true)) if audible(c)]
        if len(kept) < 2 and dropped is not None:
            dropped.append(dropped_note(source.key, words, not kept))
        found += [c for c in kept if not any(c.name == f.name for f in found)]
    return found


def shows_dc_lines(stage: object) -> bool:
    """True when the stage's measurement has a tonal line under the DC probe."""
    lines = getattr(getattr(stage, "measurement", None), "lines", None) or []
    return any(getattr(line, "probe", None) == "dc" for line in lines)


def sources_of(
    stages: Iterable, output_excerpts: dict | None, output_rate: float, output_lines: list = ()
) -> list[Source]:
    """One :class:`Source` per stage that kept excerpts (then one for the output)."""
    found = [
        Source(
            s.name, clip_stem(s.name), s.measurement.excerpts, s.fs_out_hz,
            dc_lines=shows_dc_lines(s),
        )
        for s in stages
        if s.measurement.excerpts
    ]  # fmt: skip
    if output_excerpts:
        dc = any(getattr(line, "probe", None) == "dc" for line in output_lines or ())
        found.append(
            Source("output", "output", output_excerpts, output_rate, output=True, dc_lines=dc)
        )
    return found


def report_clips(
    stages: list, output_excerpts: dict | None, output_rate: float, output_lines: list = ()
) -> tuple[dict[str, list[Clip]], list[str]]:
    """``({stage name or "output": clips}, notes)`` within :data:`AUDIO_BUDGET_BYTES`."""
    from ..measure.analysis import EXCERPT_SECONDS

    sources = sources_of(stages, output_excerpts, output_rate, output_lines)
    if not sources:
        return {}, []

    def cost(seconds: float) -> list[int]:
        """Bytes of 16-bit samples of each source's clips at ``seconds`` each."""
        return [sum(2 * c.samples.size for c in source_clips(s, seconds)) for s in sources]

    seconds = EXCERPT_SECONDS
    full = sum(cost(seconds))
    if full > AUDIO_BUDGET_BYTES:
        seconds = max(MIN_SECONDS, seconds * AUDIO_BUDGET_BYTES / full)
    sizes = dict(zip([s.key for s in sources], cost(seconds), strict=True))
    chosen, notes = list(sources), []
    while len(chosen) > 1 and sum(sizes[s.key] for s in chosen) > AUDIO_BUDGET_BYTES:
        chosen.pop(-2 if chosen[-1].output else -1)  # keep the output's clips to the last
    left_out = [s.key for s in sources if s not in chosen]
    if left_out:
        notes.append(
            f"no clips for {len(left_out)} stage(s) ({', '.join(left_out[:5])}"
            f"{', ...' if len(left_out) > 5 else ''}) to keep the page small; "
            "check them with --stage NAME"
        )
    chosen_clips = {s.key: source_clips(s, seconds, notes) for s in chosen}
    return chosen_clips, notes
