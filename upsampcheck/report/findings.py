"""Findings, verdict and the report's JSON and text forms (docs/method.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..config import Thresholds
from ..measure.lines import FLOOR_DB, to_db
from ..units import hz
from . import explain

if TYPE_CHECKING:
    from ..measure.analysis import StageMeasurement

SCHEMA_VERSION = 2
"""2: levels, response and images come from exact DFT bins of the periodic multitone (lines are
single grid bins, ``prominence_db`` is over the distortion floor, not a Welch neighbourhood);
added response/image curves, the image tone, the worst image and the periodicity error."""
SEVERITIES = ("fail", "warn", "info", "pass")
CURVE_POINTS = 256
"""Response and image curves in report.json are thinned to at most this many bins."""
PERIODICITY_TOLERANCE_DB = -60.0
"""A stage whose last two periods differ by more than this (re signal level) is not settled."""


@dataclass
class Finding:
    """One check's result on one stage."""

    check: str
    severity: str
    stage: str
    message: str
    cause: str = ""
    fix: str = ""
    freq_hz: float | None = None
    level_db: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "stage": self.stage,
            "freq_hz": _round(self.freq_hz, 2),
            "level_db": _round(self.level_db, 2),
            "message": self.message,
            "cause": self.cause,
            "fix": self.fix,
        }


@dataclass
class StageResult:
    """A stage as the report lists it: what it is, and what was measured on it."""

    index: int
    name: str
    kind: str
    factor: float
    fs_in_hz: float
    measurement: StageMeasurement
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def fs_out_hz(self) -> float:
        return self.fs_in_hz * self.factor

    @property
    def own_lines(self) -> list:
        """Lines this stage introduced (not images of lines made upstream)."""
        return [ln for ln in self.measurement.lines if ln.origin in ("", self.name)]

    def to_json(self) -> dict[str, Any]:
        m = self.measurement
        details = {k: v for k, v in self.details.items() if k != "standalone"}
        out = measurement_json(m)
        out["offset"]["input_dc_db"] = _round(m.input_dc_db, 2)
        alone = self.details.get("standalone")
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "factor": self.factor,
            "fs_in_hz": _round(self.fs_in_hz, 4),
            "fs_out_hz": _round(self.fs_out_hz, 4),
            "details": details,
            **out,
            **({"standalone": measurement_json(alone)} if alone is not None else {}),
        }


def line_json(line) -> dict[str, Any]:
    out = {
        "freq_hz": _round(line.freq_hz, 2),
        "level_db": _round(line.level_db, 2),
        "prominence_db": _round(line.prominence_db, 1),
        "probe": line.probe,
        "on_grid": line.on_grid,
    }
    if line.origin:
        out["introduced_by"] = line.origin
    return out


def curve_json(curve: tuple | None) -> dict[str, list[float]] | None:
    """A (fractions, dB) curve thinned to at most :data:`CURVE_POINTS` of its bins."""
    if curve is None:
        return None
    fractions, values = curve
    step = max(1, math.ceil(len(fractions) / CURVE_POINTS))
    return {
        "fraction": [round(float(f), 6) for f in fractions[::step]],
        "db": [round(float(v), 2) for v in values[::step]],  # float32 resolves no finer
    }


def measurement_json(m: StageMeasurement) -> dict[str, Any]:
    """The measured numbers of one stage, as report.json lists them."""
    return {
        "noise_gain_db": _round(m.noise_gain_db, 3),
        "periodicity_error_db": _round(m.periodicity_error_db, 1),
        "tonal": {
            "lines": [line_json(line) for line in m.lines],
            "max_level_db": _round(m.max_line_db, 2),
        },
        "filtering": {
            "response_db": {k: _round(v, 3) for k, v in m.response_db.items()},
            "minus3db_fraction": _round(m.minus3db_fraction, 4),
            "reference_bins": m.reference_bins,
            "curve": curve_json(m.response_curve),
        },
        "replicas": {
            "image_rejection_db": _round(m.image_rejection_db, 2),
            "image_tone_hz": _round(m.image_tone_hz, 4),
            "worst_image_db": _round(m.worst_image_db, 2),
            "curve": curve_json(m.image_curve),
        },
        "offset": {"dc_db": _round(m.dc_db, 2)},
    }


class Verdict:
    """The verdict and exit code of any report with ``findings`` (stages or audio files)."""

    findings: list[Finding]

    @property
    def verdict(self) -> str:
        """ "fail" when any finding fails, else "pass"."""
        return "fail" if any(f.severity == "fail" for f in self.findings) else "pass"

    @property
    def exit_code(self) -> int:
        """The CLI's exit code for this report: 1 on a failing finding, else 0."""
        return 1 if self.verdict == "fail" else 0


@dataclass
class Report(Verdict):
    """The whole result of a check: stages, findings and verdict."""

    subject: dict[str, Any]
    sample_rate_hz: float
    probe_samples: int
    seed: int
    device: str
    thresholds: Thresholds
    stages: list[StageResult]
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    output_lines: list | None = None
    """A stack's or model's final-output lines, each with the stage that introduced it."""
    output_excerpts: dict[str, Any] | None = None
    """A stack's or model's final output per probe, ``(T,)`` numpy at ``sample_rate_hz``
    (see :func:`~upsampcheck.measure.analysis.excerpt`); None for a single layer."""
    real_input: dict | None = None
    """``model --input``: the output for a real input, analysed as generated audio."""

    def clips(self) -> tuple[dict[str, list], list[str]]:
        """What the HTML page offers to hear: ``({stage name or "output": [Clip]}, notes)``
        (:func:`~upsampcheck.report.listening.report_clips`)."""
        from .listening import report_clips

        return report_clips(
            self.stages, self.output_excerpts, self.sample_rate_hz, self.output_lines or ()
        )

    def figure_data(self) -> dict[str, Any]:
        """The plain payload :mod:`~.outputs.plotting` draws: numpy arrays in dB relative to
        each stage's signal level, picklable without torch."""
        from .grouping import identical_to

        repeats = identical_to(self.stages)
        stages = []
        for stage in self.stages:
            m = stage.measurement
            ref = m.signal_power
            stages.append(
                {
                    "index": stage.index,
                    "name": stage.name,
                    "factor": stage.factor,
                    "fs_in_hz": stage.fs_in_hz,
                    "fs_out_hz": stage.fs_out_hz,
                    "grid_hz": [stage.fs_in_hz * k for k in range(1, int(stage.factor // 2) + 1)],
                    "freqs_hz": m.freqs_hz,
                    "spectra": {name: to_db(p / ref) for name, p in m.spectra.items()},
                    "spectrograms": {}  # an identical stage is drawn with the first: never used
                    if stage.name in repeats
                    else {name: to_db(p / ref) for name, p in m.spectrograms.items()},
                    "lines": [(line.freq_hz, line.level_db, line.probe) for line in m.lines],
                    "response": m.response_curve,
                    # the curve is the chain's; the stage's numbers are its own, driven alone
                    "response_through_chain": "chain" in stage.details,
                    # Extra keys (plotting works without them): who made each line, the DC
                    # under silence, how long the spectrograms run, an identical earlier stage.
                    "line_origins": [line.origin or stage.name for line in m.lines],
                    "dc_db": m.dc_db,
                    "span_s": m.span_s,
                    "same_as": repeats.get(stage.name),
                    "images": m.image_curve,
                    "periodicity_error_db": m.periodicity_error_db,
                }
            )
        return {
            "title": self.subject.get("name", ""),
            "verdict": self.verdict,
            "stages": stages,
        }

    def to_json(self) -> dict[str, Any]:
        """The ``report.json`` document (schema_version :data:`SCHEMA_VERSION`)."""
        import torch

        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "upsampcheck", "version": __version__},
            "environment": {"torch": torch.__version__, "device": self.device, "seed": self.seed},
            "subject": self.subject,
            "sample_rate_hz": self.sample_rate_hz,
            "probe_samples": self.probe_samples,
            "thresholds": self.thresholds.to_json(),
            "stages": [stage.to_json() for stage in self.stages],
            **(
                {"output": {"lines": [line_json(ln) for ln in self.output_lines]}}
                if self.output_lines is not None
                else {}
            ),
            **({"input": self.real_input} if self.real_input is not None else {}),
            "findings": [finding.to_json() for finding in self.findings],
            "notes": self.notes,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
        }


def _round(value: float | None, digits: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def escalate(severity: str, check: str, thresholds: Thresholds) -> str:
    """A warning on a check named in ``fail-on`` fails."""
    return "fail" if severity == "warn" and check in thresholds.fail_on else severity


def warn_or_pass(
    check: str,
    warned: bool,
    stage: str,
    message: str,
    why: Callable[[], tuple[str, str]],
    freq_hz: float | None,
    level_db: float | None,
    t: Thresholds,
) -> Finding:
    """A warning (a failure when ``check`` is in fail-on) with cause and fix, or a pass."""
    if not warned:
        return Finding(check, "pass", stage, message, level_db=level_db)
    cause, fix = why()
    return Finding(check, escalate("warn", check, t), stage, message, cause, fix, freq_hz, level_db)


def stage_findings(stage: StageResult, t: Thresholds) -> list[Finding]:
    """One finding per check for ``stage``: tonal, filtering, replicas, offset."""
    m, name, kind = stage.measurement, stage.name, stage.kind
    found: list[Finding] = []

    own = stage.own_lines
    if own:
        worst = own[0]
        probes = {ln.probe for ln in own if ln.level_db > t.tonal_warn_db} or {worst.probe}
        cause, fix = explain.tonal_cause(kind, stage.details, probes)
        grid = "on" if worst.on_grid else "off"
        message = (
            f"{len(own)} tonal line(s); loudest {hz(worst.freq_hz)} Hz at {worst.level_db:.1f} dB "
            f"({worst.probe} probe, {grid} the {hz(stage.fs_in_hz)} Hz grid)"
        )
        severity = escalate(severity_of(worst.level_db, t), "tonal", t)
        found.append(
            Finding("tonal", severity, name, message, cause, fix, worst.freq_hz, worst.level_db)
        )
    else:
        found.append(Finding("tonal", "pass", name, f"no tonal line above {t.line_floor_db:g} dB"))

    at = m.response_db.get("0.9", 0.0)
    corner = (
        "stays above -3 dB up to the input Nyquist"
        if m.minus3db_fraction is None
        else f"-3 dB at {m.minus3db_fraction:.2f} of the input Nyquist"
    )
    said = (
        "not reached by the probe" if at is None else f"{at:.1f} dB"
    )  # issue 20: no extrapolation
    found.append(
        warn_or_pass(
            "filtering", at is not None and at < t.filtering_warn_db, name,
            f"response {said} at 0.9 of the input Nyquist; {corner}",
            lambda: explain.filtering_cause(kind, stage.details), 0.9 * stage.fs_in_hz / 2, at, t,
        )
    )  # fmt: skip
    if m.image_rejection_db is not None:
        images = m.image_rejection_db
        found.append(
            warn_or_pass(
                "replicas", images > t.replicas_warn_db, name,
                f"first image {images:.1f} dB relative to the in-band bin at "
                f"{m.image_tone_hz:g} Hz (fs_in/8)",
                lambda: explain.replicas_cause(kind), stage.fs_in_hz - m.image_tone_hz, images, t,
            )
        )  # fmt: skip
    dc = m.dc_db
    shown = "none" if dc <= FLOOR_DB else f"{dc:.1f} dB"
    found.append(
        warn_or_pass(
            "offset", dc > t.offset_warn_db, name,
            f"DC under silence: {shown} relative to signal level",
            lambda: explain.offset_cause(stage.details), 0.0, None if dc <= FLOOR_DB else dc, t,
        )
    )  # fmt: skip
    return found


def chain_findings(
    stages: list[StageResult], output_lines: list, t: Thresholds, unmeasured: Sequence = ()
) -> list[Finding]:
    """Findings about a stack or model as a whole: the lines its output carries, each traced to
    the stage that introduced it, and offsets traced to the lines they become. ``unmeasured``:
    the layouts (``stage``, ``fs_in``) of stages found at exact rates but not measured, which
    own the output lines on their grid that no measured stage made."""
    found = []
    by_name = {stage.name: stage for stage in stages}
    alone = {layout.stage.name: layout for layout in unmeasured}
    for stage in stages:
        m = stage.measurement
        made = [ln for ln in stage.own_lines if ln.probe == "silence"]
        if m.input_dc_db > t.offset_warn_db and made:
            source = stage.details.get("offset_source", "upstream layers")
            freqs = ", ".join(hz(ln.freq_hz) for ln in sorted(made, key=lambda ln: ln.freq_hz)[:4])
            message = (
                f"offset of {m.input_dc_db:.1f} dB entering {stage.name} (from {source}) "
                f"-> line(s) at {freqs} Hz made by {stage.name}"
            )
            found.append(
                Finding(
                    "offset",
                    escalate(severity_of(made[0].level_db, t), "offset", t),
                    stage.name,
                    message,
                    f"a DC offset from {source} is replicated by {stage.name} to every multiple of "
                    f"its input rate ({hz(stage.fs_in_hz)} Hz)",
                    "remove that bias/ReLU offset before the upsampler, or tie the upsampler's "
                    "polyphase gains so DC stays DC",
                    made[0].freq_hz,
                    made[0].level_db,
                )
            )
    only_own = len(stages) == 1 and all(ln.origin == stages[0].name for ln in output_lines)
    if output_lines and not only_own:  # one stage: its own tonal finding already says it
        worst = output_lines[0]
        origins = sorted({ln.origin for ln in output_lines}, key=lambda n: (n not in by_name, n))
        where = "; ".join(
            f"{name}: {sum(ln.origin == name for ln in output_lines)}" for name in origins
        )
        made = (
            f"made at or after {worst.origin}, which could not be measured alone"
            if worst.origin in alone
            else f"introduced by {worst.origin}"
        )
        message = (
            f"{len(output_lines)} line(s) in the output; loudest {hz(worst.freq_hz)} Hz "
            f"at {worst.level_db:.1f} dB, {made} (lines per stage: {where})"
        )
        origin = by_name.get(worst.origin)
        if origin:
            cause, fix = explain.tonal_cause(origin.kind, origin.details, {worst.probe})
        elif worst.origin in alone:
            cause, fix = explain.unmeasured_cause(alone[worst.origin])
        else:
            cause, fix = "a nonlinearity after the last upsampler", ""
        found.append(
            Finding(
                "tonal",
                escalate(severity_of(worst.level_db, t), "tonal", t),
                "output",
                message,
                cause,
                fix,
                worst.freq_hz,
                worst.level_db,
            )
        )
    return found


def severity_of(level_db: float, t: Thresholds) -> str:
    """A tonal line's severity by its level."""
    if level_db > t.tonal_fail_db:
        return "fail"
    return "warn" if level_db > t.tonal_warn_db else "info"


def periodicity_findings(stages: list[StageResult], notes: list[str]) -> list[Finding]:
    """A warning for each stage whose last two periods still differ by more than
    :data:`PERIODICITY_TOLERANCE_DB`: its numbers carry that much non-periodic content."""
    found = []
    for stage in stages:
        error = stage.measurement.periodicity_error_db
        if error <= PERIODICITY_TOLERANCE_DB:
            continue
        message = (
            f"output not periodic in steady state: the last two probe periods differ by "
            f"{error:.1f} dB re signal level (tolerance {PERIODICITY_TOLERANCE_DB:g} dB)"
        )
        notes.append(f"{stage.name}: {message}; its numbers hold only to about that level")
        found.append(
            Finding(
                "periodicity",
                "warn",
                stage.name,
                message,
                "a receptive field longer than the probe's transient, randomness inside the "
                "model (dropout, noise injection) or true time variation",
                "lengthen the input (--input-shape / --probe-samples), call model.eval(), or "
                "fix the random seed inside the model",
            )
        )
    return found
