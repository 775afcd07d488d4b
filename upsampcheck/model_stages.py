"""One stage of a model measured in place: the probe batch at the model input, the tapped
stage signals cut to whole periods, each stage measured at its own rates (and driven alone where
it can be replayed), the output's lines traced to the stages that made them.

Rates: a stage whose output is ``r`` times shorter than the model's output runs at
``sample_rate / r``; padding and cropping make ``r`` inexact, so it is snapped to the product of
the factors of a run of consecutive later stages (or 1), else to an integer
(:func:`nominal_ratio`; a loose snap is noted).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import model_periods as periods
from .allocator import trim_when_grown
from .check import OUTPUT_SAMPLES
from .errors import StageError, UsageError
from .measure.analysis import (
    LineSettings,
    StageMeasurement,
    StagePlan,
    StageTaps,
    measure_reduced,
    output_lines,
    reduce_stage,
)
from .measure.attribution import assign_origins, trace_inputs
from .measure.multitone import design_multitone, groups_for, min_period
from .measure.probes import PROBES, make_probes
from .report.findings import (
    Finding,
    StageResult,
)
from .subjects.discover import Discovery, Stage, tap
from .units import hz

if TYPE_CHECKING:
    from .model_check import ModelOptions


MAX_INPUT_GROUPS = 2
"""Model inputs with up to this many channels (mono, stereo) get one bin group per channel."""
ALONE_ELEMENTS = 2**19
"""A stage driven alone gets at most this many input values per probe (channels x frames)."""
SLOPE_SAMPLES = 16
"""A stage's rate is read off its growth between two passes when it grew by this much."""
RATIO_TOLERANCE = 0.05
"""Length ratios within 5 % of a product of stage factors are taken as that product."""
LOOSE_TOLERANCE = 0.25
"""... and within 25 % when nothing closer fits (noted in the report)."""


def input_groups(channels: int) -> int:
    """Interleaved bin groups at a model input: one per channel up to :data:`MAX_INPUT_GROUPS`,
    else one shared by all (independent phases per channel)."""
    return channels if channels <= MAX_INPUT_GROUPS else 1


def probe_batch(
    shape: tuple[int, ...], fs: float, opts: ModelOptions, period: int | None = None,
    groups: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """``(P, *shape)``: every probe along the last (time) axis, the leading dims as channels;
    the multitone has ``period`` samples (default: the whole length) and ``groups`` bin groups
    (default: :func:`input_groups`)."""
    channels = math.prod(shape[:-1])
    period = period or max(16, shape[-1] // 2 * 2)
    mt = design_multitone(period, channels, opts.seed, opts.level, groups or input_groups(channels))
    probes = make_probes(
        shape[-1], fs, channels, seed=opts.seed, level=opts.level,
        silence_value=opts.silence_value, multitone=mt,
    )  # fmt: skip
    signals = probes.signals
    if opts.silence_value != 0.0:  # noise, DC and sweeps ride on the silence value
        rows = [i for i, name in enumerate(PROBES) if name != "silence"]
        signals[rows] += opts.silence_value
    return signals.reshape(len(PROBES), *shape)


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 when it has none): a float64
    model is probed in float64."""
    params = (p for p in model.parameters() if p.is_floating_point())
    return next(params, torch.empty(0)).dtype


def per_probe(t: torch.Tensor, probes: int = len(PROBES)) -> torch.Tensor | None:
    """``(P*k, ..., T) -> (P, k*..., T)`` when the batch is probe-major, else None."""
    if t.dim() < 2 or t.shape[0] % probes or t.is_complex() or not t.is_floating_point():
        return None
    return t.reshape(probes, -1, t.shape[-1])


def factor_products(factors: list[float], limit: float = 2.0**24) -> set[float]:
    """Every product of a subset of ``factors`` (1 included), up to ``limit``."""
    products = {1.0}
    for factor in factors:
        products |= {p * factor for p in products if p * factor <= limit}
    return products


def nominal_ratio(
    length: int, shorter: int, factors: list[float], every: list[float] | None = None
) -> tuple[float, bool]:
    """``length / shorter`` as a rate ratio, and whether it snapped cleanly.

    Tried in turn: the nearest product of a run of consecutive ``factors`` (or 1), or the
    reciprocal of a product of any of ``every`` (a stage running faster than the output, as
    BigVGAN's x2 anti-aliasing before its /2), within :data:`RATIO_TOLERANCE`; an integer
    within 2 % and 0.1; below 1, the reciprocal of an integer within 2 % (the signal is
    decimated after the stage by an op that is no stage: Demucs resamples its output back down
    with ``julius.resample_frac(x, 2, 1)``); the nearest such product within
    :data:`LOOSE_TOLERANCE` (short inputs, where a crop of a few frames is a large fraction:
    WaveRNN's upsampler drops 4 of 64 frames); else the ratio itself. The last two are not
    clean: the caller notes them.
    """
    ratio = length / shorter
    products = {1.0}
    for start in range(len(factors)):
        product = 1.0
        for factor in factors[start:]:
            product *= factor
            products.add(product)
    products |= {1 / p for p in factor_products(every or [])}
    best = min(products, key=lambda p: abs(math.log(ratio / p)))
    if abs(ratio / best - 1) <= RATIO_TOLERANCE:
        return best, True
    if abs(ratio - round(ratio)) <= min(0.02 * ratio, 0.1):
        return float(round(ratio)), True
    if 0 < ratio < 1 and abs(ratio * round(1 / ratio) - 1) <= 0.02:
        return 1 / round(1 / ratio), True
    if abs(ratio / best - 1) <= LOOSE_TOLERANCE:
        return best, False
    return ratio, False


def integer_rate(stage: Stage) -> int | None:
    """The stage's upsampling factor as an integer: its factor when within 5 % of an integer
    >= 2 (a shape-growth stage's factor is its exact length ratio, which padding can make
    7.99 for 8), else None (a fractional factor such as 1.5 is not measured)."""
    rate = round(stage.factor)
    if rate >= 2 and abs(stage.factor / rate - 1) <= RATIO_TOLERANCE:
        return rate
    return None


def nonfinite_finding(where: str, bad: list[str]) -> Finding:
    """A failing finding: NaN or Inf in ``where`` for the ``bad`` probes."""
    return Finding(
        "numerics",
        "fail",
        where,
        f"non-finite values (NaN/Inf) in {where} for the {', '.join(bad)} probe(s)",
        "the model produces NaN or Inf for these inputs",
        "check the model's weights and input range",
    )


def finite_or_finding(t: torch.Tensor, where: str, findings: list[Finding]) -> bool:
    """False (and a failing finding) when ``t`` holds NaN or Inf."""
    if torch.isfinite(t).all():
        return True
    bad = [name for i, name in enumerate(PROBES) if not torch.isfinite(t[i]).all()]
    findings.append(nonfinite_finding(where, bad))
    return False


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
            with torch.no_grad():
                y = stage.replay(signals)
        except Exception:
            continue
        xs, ys = per_probe(signals), per_probe(y)
        if xs is None or ys is None or not torch.isfinite(ys).all():
            return None
        plan = StagePlan(fs_in, rate, period, period, groups, period)
        try:
            return measure_on_periods(xs, ys, plan, settings)
        except (ValueError, UsageError):
            return None
    return None


def measure_on_periods(
    x: torch.Tensor, y: torch.Tensor, plan: StagePlan, settings: LineSettings
) -> StageMeasurement:
    """:func:`~.measure.analysis.measure_stage` on the middle periods of the probe rows
    ``x (5, C, T_in)``, ``y (5, C', T_out)``; the sweep and tone for the figures."""
    return measure_reduced(reduce_on_periods(x, y, plan), plan, settings)


def reduce_on_periods(x: torch.Tensor, y: torch.Tensor, plan: StagePlan) -> StageTaps:
    """The middle periods of the probe rows ``x (5, C, T_in)``, ``y (5, C', T_out)`` reduced
    (:func:`~.measure.analysis.reduce_stage`), the sweep and tone kept for the figures."""
    n_in, n_out = plan.period_in, plan.period_out
    others = {name: y[i] for i, name in enumerate(PROBES) if i >= 3}
    return reduce_stage(
        periods.centre_periods(x[:3], n_in), periods.centre_periods(y[:3], n_out), plan, others
    )


@dataclass(frozen=True)
class TapShape:
    """What a stage's tapped input leaves behind for driving the stage alone: its shape per
    probe (no batch), dtype, device, and whether it is complex."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    complex: bool


@dataclass
class Lengths:
    """A pass's lengths: its input's, its output's, and each stage's output (by name)."""

    input: int
    output: int
    stages: dict[str, int]

    @classmethod
    def of(cls, found: Discovery, length: int) -> Lengths:
        """The lengths of a discovery pass at input ``length``."""
        return cls(length, found.output_shape[-1], {s.name: s.out_shape[-1] for s in found.stages})


def length_ratio(
    name: str, here: Lengths, ref: Lengths | None, slope: float | None = None
) -> tuple[float, float]:
    """``(model output samples, stage output samples)`` whose ratio is the stage's rate
    ratio: their growth between the pass ``ref`` and this one where the stage grew by at least
    :data:`SLOPE_SAMPLES` (padding and cropping cancel: Demucs pads its input to a valid
    length, so at depth the lengths themselves are far from the rates), else the lengths. The
    output's growth is ``slope`` times the input's when given (the model factor)."""
    own = here.stages[name]
    if ref is not None and name in ref.stages and abs(own - ref.stages[name]) >= SLOPE_SAMPLES:
        grown = (here.input - ref.input) * slope if slope else here.output - ref.output
        if grown:
            return grown, own - ref.stages[name]
    return here.output, own


@dataclass
class StageLayout:
    """Where a stage sits in the model: its integer factor, its rates (``fs_out = sample_rate /
    ratio``, ``ratio`` snapped to the factors discovery found, so ``fs_in · rate == fs_out``
    exactly), and its :class:`StagePlan`, or why it cannot be measured."""

    stage: Stage
    rate: int | None
    fs_in: float
    fs_out: float
    plan: StagePlan | None = None
    why: str | None = None


@dataclass
class PassPlan:
    """What lays a stage out as the probe pass reaches it (:meth:`layout`): the output's rate
    and (expected) length, the model input's rate and multitone period, every stage's integer
    factor and each stage's later factors, the lowest input rate laid out so far (the grid),
    and where loose snaps are noted."""

    sample_rate: float
    fs0: float
    period: int
    groups: int
    out_len: int
    every: list[int]
    later: dict[str, list[float]]
    notes: list[str]
    frames: int = 0
    factor: float = 1.0
    ref: Lengths | None = None
    """A discovery pass at another input length: rates from each stage's growth since."""
    lowest: float = math.inf

    def layout(self, stage: Stage, length: int) -> StageLayout:
        """The layout of ``stage``, whose output is ``length`` samples long in this pass: its
        output rate is ``sample_rate`` over the model output's length / ``length``, snapped
        (:func:`nominal_ratio`: a run of later stages' factors, or one over a product of any,
        for a stage that runs faster than the output); its input rate that over its factor.
        A loose snap is noted."""
        rate = integer_rate(stage)
        here = Lengths(self.frames, self.out_len, {stage.name: length})
        lengths = length_ratio(stage.name, here, self.ref, self.factor)
        ratio, clean = nominal_ratio(*lengths, self.later[stage.name], self.every)
        fs_out = self.sample_rate / ratio
        if not clean:
            self.notes.append(
                f"{stage.name}: output/stage length ratio {lengths[0] / lengths[1]:.4g} taken "
                f"as {ratio:.4g}, so its output rate is {fs_out:g} Hz"
            )
        layout = StageLayout(stage, rate, fs_out / rate if rate else fs_out, fs_out)
        if rate is None:
            layout.why = "its factor is not an integer"
            return layout
        period_in = periods.whole(periods.rate_ratio(layout.fs_in / self.fs0) * self.period)
        if period_in is None or period_in < 16:
            layout.why = f"its rate {layout.fs_in:g} Hz does not divide the probe period"
            return layout
        self.lowest = min(self.lowest, layout.fs_in)
        grid = max(1, round(self.lowest / (self.fs0 / self.period)))
        layout.plan = StagePlan(layout.fs_in, rate, period_in, self.period, self.groups, grid)
        return layout


@dataclass
class Tapped:
    """A stage's probe-pass signals as the in-pass reducer left them: the measurement (None,
    with ``why``, when it cannot be measured), the tapped input's :class:`TapShape`, and the
    probes whose output held NaN or Inf."""

    shape: TapShape
    layout: StageLayout
    measurement: StageMeasurement | None = None
    why: str | None = None
    nonfinite: list[str] | None = None
    unreached: bool = False


def reduce_tap(
    stage: Stage, planner: PassPlan, settings: LineSettings, x_raw: torch.Tensor,
    y_raw: torch.Tensor,
) -> Tapped:  # fmt: skip
    """Lay out and measure a stage on its tapped ``(input, output)`` right where it runs,
    keeping only the measurement: the model's own tensors are never held past the call (and
    freed heap memory goes back to the system as the pass grows: :mod:`.allocator`)."""
    trim_when_grown()
    layout = planner.layout(stage, y_raw.shape[-1])
    x, y = per_probe(x_raw), per_probe(y_raw)
    shape = TapShape(tuple(x_raw.shape[1:]), x_raw.dtype, x_raw.device, x_raw.is_complex())
    if layout.rate is None:
        return Tapped(shape, layout, why="its factor is not an integer")
    if y is None:
        return Tapped(shape, layout, why="its output does not keep the probes along the batch")
    if not torch.isfinite(y).all():
        bad = [name for i, name in enumerate(PROBES) if not torch.isfinite(y[i]).all()]
        return Tapped(shape, layout, nonfinite=bad)
    if x is None or x.shape[-1] * layout.rate < y.shape[-1] // 2:
        what = "complex" if x_raw.is_complex() else "not a per-probe signal"
        why = f"its input is {what}, so the probes cannot be traced through it"
        return Tapped(shape, layout, why=why)
    if not x.any():
        why = (
            "not reached by the probes (its input is zero for every probe: an unused branch, "
            "or one driven by the model's own noise)"
        )
        return Tapped(shape, layout, why=why, unreached=True)
    if layout.plan is None:
        return Tapped(shape, layout, why=layout.why)
    try:
        return Tapped(shape, layout, measure_on_periods(x, y, layout.plan, settings))
    except (ValueError, UsageError):
        return Tapped(shape, layout, why="too few samples; lengthen --input-shape")


def run_probes(
    model: nn.Module,
    signals: torch.Tensor,
    stages: list[Stage],
    reducers: dict[str, Callable],
    method: str,
    batch: int | None,
) -> tuple[torch.Tensor, dict[str, Tapped]]:
    """:func:`~.subjects.discover.tap` on the whole probe batch, each stage reduced inside the
    pass; or, for a model exported with a fixed batch of ``batch`` examples, one pass per
    probe (each repeated ``batch`` times), the taps stacked probe-major as if the batch had run
    at once, then reduced."""
    if batch is None:
        return tap(model, signals, stages, method, reducers)
    outputs, taps = [], {}
    for row in signals:
        out, part = tap(
            model,
            row.expand(batch, *row.shape).contiguous(),
            stages,
            method,
            dict.fromkeys(reducers),
        )
        outputs.append(out)
        for name, pair in part.items():
            taps.setdefault(name, []).append(pair)
    joined = {
        name: reducers[name](torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs]))
        for name, pairs in taps.items()
    }
    return torch.cat(outputs), joined


def probe_model(
    model: nn.Module,
    shape: tuple[int, ...],
    fs: float,
    stages: list[Stage],
    planner: PassPlan,
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
    settings: LineSettings,
) -> tuple[torch.Tensor, dict[str, Tapped]]:
    """The batched probe pass: every probe of shape ``shape`` at the model's input rate ``fs``
    (the multitone of ``planner.period`` samples) through the model (:func:`run_probes`), each
    of ``stages`` laid out by ``planner`` and measured inside the pass (:func:`reduce_tap`).
    Returns the output per probe ``(P, k, T)`` and each stage's :class:`Tapped`."""
    signals = probe_batch(shape, fs, opts, planner.period).to(device, model_dtype(model))
    reducers = {s.name: functools.partial(reduce_tap, s, planner, settings) for s in stages}
    try:
        output, taps = run_probes(model, signals, stages, reducers, opts.method, batch)
    except StageError as exc:
        raise StageError(f"{exc} (check --input-shape / --method)") from None
    y_out = per_probe(output)
    if y_out is None:
        raise UsageError(f"model output of shape {tuple(output.shape)} has no probe-major batch")
    return y_out, taps


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
        f"{stage.kind} x{stage.factor:g} found but not reached by the probes (its input is "
        f"zero for every probe); driven alone it makes {len(alone.lines)} tonal line(s), "
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
        return None
    measurement = tapped.measurement
    # Attribution follows the signal: what is already at this stage's input is inherited
    # (from whichever stage made it, in any branch), not introduced here.
    tol = measurement.bin_hz / 2
    upstream = trace_inputs(measurement.input_lines, done, tol, stage.name)
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
            if first != stage.name:
                details["standalone_of"] = first
    return StageResult(
        len(done), stage.name, kind_of(stage), layout.rate, layout.fs_in, measurement, details
    )


def trace_output_lines(
    y_out: torch.Tensor,
    results: list[StageResult],
    ctx: StageContext,
) -> list | None:
    """The lines of the model output ``y_out`` ``(P, k, T)`` on the lowest measured stage
    grid, each traced to the stage that made it (:func:`trace_output`). None (and a note) when
    the output does not hold whole periods."""
    factor = periods.rate_ratio(ctx.sample_rate / ctx.fs0)
    period_out = periods.whole(factor * ctx.period)
    bin_hz = ctx.fs0 / ctx.period
    grid = max(1, round(min(r.fs_in_hz for r in results) / bin_hz))
    try:
        if period_out is None:
            raise ValueError("no whole period")
        window = periods.centre_periods(y_out[:3], period_out)
        lines = output_lines(window, period_out, grid, bin_hz, ctx.settings, ctx.groups, ctx.period)
    except (ValueError, UsageError):
        ctx.notes.append("the output does not hold whole probe periods; its lines not traced")
        return None
    trace_output(lines, results, bin_hz / 2)
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
    weight = getattr(stage.module, "weight", None)  # also a TorchScript/exported module's
    if stage.kind.startswith("ConvTranspose1d") and isinstance(weight, torch.Tensor):
        from .subjects.layers import polyphase_sums

        details["length"] = weight.shape[-1]
        sums = polyphase_sums(weight.detach().double().cpu(), rate).mean(0)
        details["polyphase_sums"] = [round(v, 6) for v in sums.tolist()]
    return details


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
