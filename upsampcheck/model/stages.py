"""A stage's result after the probe pass: its lines traced to the stages that made them, its
standalone drive (once per group of identical stages), and the model output's lines traced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from ..check import OUTPUT_SAMPLES
from ..errors import UsageError
from ..measure.analysis import (
    LineSettings,
    StageMeasurement,
    StagePlan,
    adopt_standalone,
    output_lines,
)
from ..measure.attribution import assign_origins, grid_owners, trace_inputs
from ..measure.multitone import groups_for, min_period
from ..phases import phase
from ..report.findings import Finding, StageResult
from ..subjects.discover import Stage
from ..units import hz
from . import periods
from .rates import StageLayout, integer_rate
from .seeding import seeded
from .taps import (
    Tapped,
    TapShape,
    measure_on_periods,
    nonfinite_finding,
    nonfinite_probes,
    per_probe,
    probe_batch,
)

if TYPE_CHECKING:
    from .check import ModelOptions

ALONE_ELEMENTS = 2**19
"""A stage driven alone gets at most this many input values per probe (channels x frames)."""


@phase("standalone drives")
def measure_alone(
    stage: Stage,
    tapped: TapShape,
    fs_in: float,
    opts: ModelOptions,
    settings: LineSettings,
) -> StageMeasurement | None:
    """Drive a replayable stage with fresh probes at its own input rate, as ``upsampcheck
    layer`` would (silence is zeros, whatever ``--silence-value`` says about the model input);
    the input keeps the tapped shape (``tapped``) except batch and, where the op allows, a
    length that gives :data:`OUTPUT_SAMPLES` at the output (shorter for wide stages: at most
    :data:`ALONE_ELEMENTS` input values per probe), else the tapped length. Each
    input channel gets its own bins up to 8 channels (:mod:`.measure.multitone`)."""
    rate = integer_rate(stage)
    if stage.replay is None or tapped.complex or rate is None:
        return None
    opts = replace(opts, silence_value=0.0)
    shape = tapped.shape
    channels = math.prod(shape[:-1])
    frames = min(math.ceil(OUTPUT_SAMPLES / rate), ALONE_ELEMENTS // channels)
    for length in dict.fromkeys((frames, shape[-1])):  # the tapped length if the op needs it
        period = 16
        while periods.periods_in(length, 2 * period):
            period *= 2
        if not periods.periods_in(length, period):
            continue
        groups = groups_for(channels) if period >= min_period(groups_for(channels)) else 1
        signals = probe_batch((*shape[:-1], length), fs_in, opts, period, groups)
        signals = signals.to(tapped.device, tapped.dtype)
        try:
            with torch.no_grad(), seeded(opts.seed, tapped.device):
                y = stage.replay(signals)
        except Exception:
            continue
        xs, ys = per_probe(signals), per_probe(y)
        if xs is None or ys is None or nonfinite_probes(ys):
            return None
        plan = StagePlan(fs_in, rate, period, period, groups, period)
        try:
            return measure_on_periods(xs, ys, plan, settings)
        except (ValueError, UsageError):
            return None
    return None


@dataclass
class StageContext:
    """What measuring each stage of one model shares: the model output's rate, the model's
    input rate and multitone period, the standalone measurements of each group of identical
    stages, and where findings and notes go."""

    sample_rate: float
    fs0: float
    period: int
    groups: int
    settings: LineSettings
    opts: ModelOptions
    findings: list[Finding]
    notes: list[str]
    alone: dict[str, StageMeasurement | None] = field(default_factory=dict)
    """Standalone measurement by the name of the first stage of its group."""
    group_of: dict[str, list[str]] = field(default_factory=dict)
    """Each stage's group of identical stages (names, its own first)."""
    unmeasured: list[StageLayout] = field(default_factory=list)
    """Stages found, at exact rates, but not measured (an ``istft``: its input is complex), in
    execution order: each owns the lines on its grid that no measured stage made
    (:func:`~.measure.attribution.grid_owners`)."""

    def owners(self) -> list[tuple[str, float]]:
        """``(name, fs_in)`` of each stage in :attr:`unmeasured`."""
        return [(lay.stage.name, lay.fs_in) for lay in self.unmeasured]

    def not_measured(self, stage: Stage, why: str) -> None:
        """An ``info`` finding: the stage was found but not measured, because ``why``."""
        message = f"{stage.kind} x{stage.factor:g} found but not measured: {why}"
        self.findings.append(Finding("discovery", "info", stage.name, message))


def unreached_finding(layout: StageLayout, tapped: Tapped, ctx: StageContext) -> None:
    """A stage no probe reaches (its input is zero: an unused branch, or one the model drives
    with its own noise) is driven alone where it can be; its own lines, which the model's
    output would carry whenever that branch is driven, make the finding a warning."""
    stage = layout.stage
    alone = None
    if ctx.opts.standalone and layout.rate is not None:
        alone = measure_alone(stage, tapped.shape, layout.fs_in, ctx.opts, ctx.settings)
    if alone is None or not alone.lines:
        ctx.not_measured(stage, tapped.why or "not reached by the probes")
        return
    loudest = alone.lines[0]
    message = (
        f"{stage.kind} x{stage.factor:g} found but {tapped.why or 'not reached by the probes'}; "
        f"driven alone it makes {len(alone.lines)} tonal line(s), "
        f"loudest {hz(loudest.freq_hz)} Hz at {loudest.level_db:.1f} dB ({loudest.probe} probe)"
    )
    cause = (
        "a branch the probes never drive (the model's own noise, or an unused input) has an "
        "upsampler whose lines reach the output whenever that branch is driven"
    )
    fix = "check this stage on its own (upsampcheck layer), or drive the branch (--input)"
    ctx.findings.append(
        Finding("tonal", "warn", stage.name, message, cause, fix, loudest.freq_hz, loudest.level_db)
    )


def finish_stage(tapped: Tapped, done: list[StageResult], ctx: StageContext) -> StageResult | None:
    """The result of a stage measured in the probe pass (or a finding saying why not): its
    lines' origins traced through the stages measured before it (``done``), and its
    standalone measurement, shared by every stage of its group (driven once)."""
    layout = tapped.layout
    stage = layout.stage
    if tapped.nonfinite:
        ctx.findings.append(nonfinite_finding(stage.name, tapped.nonfinite))
        return None
    if tapped.measurement is None and tapped.unreached:
        unreached_finding(layout, tapped, ctx)
        return None
    if tapped.measurement is None:
        ctx.not_measured(stage, tapped.why or "no measurement")
        if layout.rate is not None:  # its rates are exact: it owns the lines on its grid
            ctx.unmeasured.append(layout)
        return None
    measurement = tapped.measurement
    # Attribution follows the signal: what is already at this stage's input is inherited
    # (from whichever stage made it, in any branch), not introduced here; a line no measured
    # stage made, on the grid of a stage found but not measured before this one, is its.
    tol = measurement.bin_hz / 2
    upstream = trace_inputs(measurement.input_lines, done, tol, stage.name)
    grid_owners(upstream, ctx.owners(), lambda origin: origin.startswith("upstream of"), tol)
    assign_origins(measurement.lines, upstream, layout.fs_in, layout.rate, stage.name, tol)
    details = stage_details(stage, layout.rate)
    group = ctx.group_of.get(stage.name, [stage.name])
    if len(group) > 1:
        details["identical_stages"] = group
    if ctx.opts.standalone:
        first = group[0]
        if first not in ctx.alone:
            ctx.alone[first] = measure_alone(
                stage, tapped.shape, layout.fs_in, ctx.opts, ctx.settings
            )
        if ctx.alone[first] is not None:
            details["standalone"] = ctx.alone[first]
            details["chain"] = adopt_standalone(measurement, ctx.alone[first])
            if first != stage.name:
                details["standalone_of"] = first
    unreached_points(stage.name, measurement, ctx.notes)
    return StageResult(
        len(done), stage.name, kind_of(stage), layout.rate, layout.fs_in, measurement, details
    )


def unreached_points(name: str, m: StageMeasurement, notes: list[str]) -> None:
    """A note for the response points beyond the last bin the probe reached at this stage
    (reported as None: never extrapolated), and for a reference that is not in 1–5 % of the
    band (a fixed-length archive's short period): never a silent fallback."""
    if m.reference_bins == 0 and len(m.response_curve[0]):
        notes.append(
            f"{name}: no driven bin in 1-5 % of its input band at this probe period; its "
            f"response is relative to the lowest driven bin, at {m.response_curve[0][0]:.3g} "
            "of the band"
        )
    missing = [point for point, value in m.response_db.items() if value is None]
    if missing:
        top = float(m.response_curve[0][-1]) if len(m.response_curve[0]) else 0.0
        notes.append(
            f"{name}: the probe reaches {top:.3g} of its input band (the stages before it cut "
            f"the rest by more than 30 dB); the response at {', '.join(missing)} of the band "
            "is not reported"
        )


def trace_output_lines(
    y_out: torch.Tensor,
    results: list[StageResult],
    ctx: StageContext,
) -> list | None:
    """The lines of the model output ``y_out`` ``(P, k, T)`` on the lowest stage grid (stages
    measured or found at exact rates but not measured), each traced to the stage that made it
    (:func:`trace_output`); a line no measured stage carries, on the grid of a stage that was
    not measured, is that stage's (:func:`~.measure.attribution.grid_owners`). None (and a
    note) when the output does not hold whole periods."""
    factor = periods.rate_ratio(ctx.sample_rate / ctx.fs0)
    period_out = periods.whole(factor * ctx.period)
    bin_hz = ctx.fs0 / ctx.period
    rates = [r.fs_in_hz for r in results] + [lay.fs_in for lay in ctx.unmeasured]
    grid = max(1, round(min(rates) / bin_hz))
    try:
        if period_out is None:
            raise ValueError("no whole period")
        window = periods.centre_periods(y_out[:3], period_out)
        lines = output_lines(window, period_out, grid, bin_hz, ctx.settings, ctx.groups, ctx.period)
    except (ValueError, UsageError):
        ctx.notes.append("the output does not hold whole probe periods; its lines not traced")
        return None
    trace_output(lines, results, bin_hz / 2)
    unowned = lambda origin: origin == "output" or origin.startswith("upstream of")  # noqa: E731
    grid_owners(lines, ctx.owners(), unowned, bin_hz / 2)
    return lines


def stage_details(stage: Stage, rate: int) -> dict:
    """What the report says about a discovered stage; a transposed conv's kernel length and
    polyphase sums feed the cause text (partial overlap vs. weights)."""
    details = {
        "op": stage.kind,
        "in_shape": list(stage.in_shape[1:]),
        "out_shape": list(stage.out_shape[1:]),
        "stride": rate,
    }
    weight, fixed = transposed_kernel(stage)
    if weight is not None:
        from ..subjects.layers import polyphase_sums

        w = weight.detach().double().cpu()
        details["length"] = weight.shape[-1]
        sums = polyphase_sums(w, rate).mean(0)
        details["polyphase_sums"] = [round(v, 6) for v in sums.tolist()]
        if fixed:  # never initialised nor trained: the cause text must not say so
            details["weights"] = "fixed"
            if one_tap(w):
                details["zero_stuffing"] = True
    return details


def transposed_kernel(stage: Stage) -> tuple[torch.Tensor | None, bool]:
    """A 1-D transposed conv stage's kernel ``(C_in, C_out, L)`` and whether it is a fixed
    filter: a module's weight that is not a trainable parameter (a buffer, ``requires_grad``
    off), or a functional call's filter computed from buffers and constants only (the
    multi-band MelGAN PQMF's ``updown_filter * subbands``). ``(None, False)`` for other stages."""
    if stage.kind.startswith("ConvTranspose1d"):
        weight = getattr(stage.module, "weight", None)  # also a TorchScript/exported module's
        if not isinstance(weight, torch.Tensor):
            return None, False
        trainable = isinstance(weight, torch.nn.Parameter) and weight.requires_grad
        return weight, not trainable
    if stage.kind == "conv_transpose1d" and stage.operands:
        args, kwargs = stage.operands
        weight = dict(kwargs).get("weight", args[1] if len(args) > 1 else None)
        if isinstance(weight, torch.Tensor) and weight.ndim == 3:
            return weight, stage.learned is False
    return None, False


def one_tap(weight: torch.Tensor) -> bool:
    """True for a kernel with at most one nonzero tap per input/output channel pair (and
    some nonzero): the transposed conv only inserts zeros between (scaled) input samples."""
    nonzero = (weight != 0).sum(-1)
    return bool(nonzero.max() == 1)


def kind_of(stage: Stage) -> str:
    """The report's kind: ``transposed`` for transposed convs (so causes and fixes match the
    layer command's), else the discovered kind."""
    transposed = stage.kind.startswith("ConvTranspose1d") or stage.kind == "conv_transpose1d"
    return "transposed" if transposed else stage.kind


def trace_output(lines: list, stages: list[StageResult], tol_hz: float) -> None:
    """Give each output line the origin of the same line at the latest stage that has it."""
    for line in lines:
        line.origin = "output"
        for stage in reversed(stages):
            match = [
                ln
                for ln in stage.measurement.lines
                if ln.probe == line.probe and abs(ln.freq_hz - line.freq_hz) <= tol_hz
            ]
            if match:
                line.origin = match[0].origin
                break
