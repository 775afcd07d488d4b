"""``upsampcheck model``: probe a real model at its input, tap every upsampling stage in one
batched pass, measure each stage at its own rate, drive each replayable stage alone, and trace
the output's lines to the stages that made them.

Rates: the output runs at ``sample_rate``; a stage whose output is ``r`` times shorter than the
model's output runs at ``sample_rate / r``, and its input rate is that divided by the stage's
factor. Padding and cropping make ``r`` inexact (HDemucs: 44104 samples for 44100, 176 frames
for 172.3), so ``r`` is snapped to the product of the factors of a run of consecutive later
stages (or 1), else to an integer (:func:`nominal_ratio`; a loose snap is noted). The model's
own input rate is ``sample_rate`` over the output/input length ratio, snapped the same way.

What was found but not measured is an ``info`` finding of check ``discovery``: growth along a
non-time axis (HDemucs' frequency-axis ConvTranspose2d), a stage whose input is complex
(``istft``) or whose factor is fractional, and a model with no upsampling stage at all. A
model whose exported archive fixes the batch size (torch.export) runs one probe per pass.

Every probe is periodic in ``M`` input samples (:mod:`.model_periods`): each stage is measured
on whole periods in the middle of its tapped signals (:func:`~.measure.analysis.measure_stage`),
image rejection included, whatever its rate. A stage that has not settled there (a receptive
field longer than the lead-in, randomness inside the model) is probed again with one, then
three more periods on each side, and a warning says so if it still differs period to period.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from . import model_periods as periods
from .bounds import check_memory
from .check import OUTPUT_SAMPLES, PERIODS, check_sample_rate, resolve_device
from .config import Thresholds, load_thresholds
from .errors import StageError, UsageError
from .measure.analysis import (
    LineSettings,
    StageMeasurement,
    StagePlan,
    excerpt,
    measure_stage,
    output_lines,
)
from .measure.attribution import assign_origins
from .measure.multitone import design_multitone, groups_for, min_period
from .measure.probes import PROBES, make_probes
from .report.findings import (
    PERIODICITY_TOLERANCE_DB,
    Finding,
    Report,
    StageResult,
    chain_findings,
    periodicity_findings,
    stage_findings,
)
from .subjects.discover import Discovery, Stage, discover, module_types, tap
from .subjects.loading import LoadedModel

MAX_INPUT_GROUPS = 2
"""Model inputs with up to this many channels (mono, stereo) get one bin group per channel."""
RETRY_LEADS = (2.0, 4.0)
"""Lead-in periods of the probe passes after a stage has not settled."""
DISCOVERY_FRAMES = 256
"""Frames of an inferred input at discovery (its length is set from the rates after)."""
ALONE_ELEMENTS = 2**19
"""A stage driven alone gets at most this many input values per probe (channels x frames)."""
RATIO_TOLERANCE = 0.05
"""Length ratios within 5 % of a product of stage factors are taken as that product."""
LOOSE_TOLERANCE = 0.25
"""... and within 25 % when nothing closer fits (noted in the report)."""


@dataclass
class ModelOptions:
    """What ``upsampcheck model`` needs besides the loaded model."""

    sample_rate: float = 16000.0
    input_shape: tuple[int, ...] | None = None
    method: str = "forward"
    silence_value: float = 0.0
    level: float = 0.1
    stage: str | None = None
    seed: int = 0
    device: str = "auto"
    standalone: bool = True


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,16000"`` -> ``(1, 16000)``; every dimension a positive integer."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected integers like 1,16000") from None
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {text!r}: every dimension must be >= 1")
    return shape


def infer_channels(model: nn.Module) -> tuple[int, ...] | None:
    """Leading input dims from the first Conv1d / ConvTranspose1d (its in_channels); in a
    TorchScript or exported model, from the weight of the first module written as one."""
    types = module_types(model)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            return (module.in_channels,)
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 3:
            continue
        if types.get(name) == "Conv1d":  # (out, in / groups, k): groups unknown, taken as 1
            return (weight.shape[1],)
        if types.get(name) == "ConvTranspose1d":  # (in, out / groups, k)
            return (weight.shape[0],)
    return None


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


def nominal_ratio(length: int, shorter: int, factors: list[float]) -> tuple[float, bool]:
    """``length / shorter`` as a rate ratio, and whether it snapped cleanly.

    Tried in turn: the nearest product of a run of consecutive ``factors`` (or 1) within
    :data:`RATIO_TOLERANCE`; an integer within 2 % and 0.1; the nearest product within
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
    best = min(products, key=lambda p: abs(math.log(ratio / p)))
    if abs(ratio / best - 1) <= RATIO_TOLERANCE:
        return best, True
    if abs(ratio - round(ratio)) <= min(0.02 * ratio, 0.1):
        return float(round(ratio)), True
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


def finite_or_finding(t: torch.Tensor, where: str, findings: list[Finding]) -> bool:
    """False (and a failing finding) when ``t`` holds NaN or Inf."""
    if torch.isfinite(t).all():
        return True
    bad = [name for i, name in enumerate(PROBES) if not torch.isfinite(t[i]).all()]
    findings.append(
        Finding(
            "numerics",
            "fail",
            where,
            f"non-finite values (NaN/Inf) in {where} for the {', '.join(bad)} probe(s)",
            "the model produces NaN or Inf for these inputs",
            "check the model's weights and input range",
        )
    )
    return False


def measure_alone(
    stage: Stage, x: torch.Tensor, fs_in: float, opts: ModelOptions, settings: LineSettings
) -> StageMeasurement | None:
    """Drive a replayable stage with fresh probes at its own input rate, as ``upsampcheck
    layer`` would (silence is zeros, whatever ``--silence-value`` says about the model input);
    the input keeps the tapped shape except batch and, where the op allows, a length that gives
    :data:`OUTPUT_SAMPLES` at the output (shorter for wide stages: at most
    :data:`ALONE_ELEMENTS` input values per probe, never shorter than the tapped input). Each
    input channel gets its own bins up to 8 channels (:mod:`.measure.multitone`)."""
    rate = integer_rate(stage)
    if stage.replay is None or x.is_complex() or rate is None:
        return None
    opts = replace(opts, silence_value=0.0)
    shape = tuple(x.shape[1:])
    channels = math.prod(shape[:-1])
    frames = min(math.ceil(OUTPUT_SAMPLES / rate), ALONE_ELEMENTS // channels)
    for length in (max(shape[-1], frames), shape[-1]):
        period = 16
        while periods.periods_in(length, 2 * period):
            period *= 2
        if not periods.periods_in(length, period):
            continue
        groups = groups_for(channels) if period >= min_period(groups_for(channels)) else 1
        signals = probe_batch((*shape[:-1], length), fs_in, opts, period, groups)
        signals = signals.to(x.device, x.dtype)
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
    n_in, n_out = plan.period_in, plan.period_out
    others = {name: y[i] for i, name in enumerate(PROBES) if i >= 3}
    return measure_stage(
        periods.centre_periods(x[:3], n_in), periods.centre_periods(y[:3], n_out), plan,
        settings, others,
    )  # fmt: skip


def run_probes(
    model: nn.Module,
    signals: torch.Tensor,
    stages: list[Stage],
    method: str,
    batch: int | None,
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """:func:`~.subjects.discover.tap` on the whole probe batch, or, for a model exported with
    a fixed batch of ``batch`` examples, one pass per probe (each repeated ``batch`` times), the
    results stacked probe-major as if the batch had run at once."""
    if batch is None:
        return tap(model, signals, stages, method)
    outputs, taps = [], {}
    for row in signals:
        out, part = tap(model, row.expand(batch, *row.shape).contiguous(), stages, method)
        outputs.append(out)
        for name, pair in part.items():
            taps.setdefault(name, []).append(pair)
    joined = {
        name: (torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs]))
        for name, pairs in taps.items()
    }
    return torch.cat(outputs), joined


def resolve_input_shape(
    loaded: LoadedModel, model: nn.Module, requested: tuple[int, ...] | None, notes: list[str]
) -> tuple[tuple[int, ...], int | None, bool]:
    """The model input's shape without batch, e.g. ``(C, T)``; the batch size an exported
    program was fixed to (None: any); and whether the shape was inferred.

    Taken from, in turn: ``--input-shape``; the archive's example input; the first conv's
    channels (:func:`infer_channels`) by :data:`DISCOVERY_FRAMES` frames, whose length
    :func:`inferred_frames` sets once the rates are known. A note says where it came from.
    """
    shape, batch = requested, None
    if loaded.example_inputs:
        batch = loaded.example_inputs[0].shape[0]
        if shape is None:
            shape = tuple(loaded.example_inputs[0].shape[1:])
            notes.append(f"input shape {shape} from the archive's example input")
    if shape is not None:
        return shape, batch, False
    leading = infer_channels(model)
    if leading is None:
        raise UsageError("cannot infer the input shape; pass --input-shape D1,...,T")
    notes.append(f"input shape inferred from the first conv: {leading[0]} channel(s)")
    return (*leading, DISCOVERY_FRAMES), batch, True


def discover_stages(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
) -> tuple[Discovery, int]:
    """:func:`~.subjects.discover.discover` on the first probe of shape ``shape`` (repeated
    to ``batch``), and the input length it ran at.

    Discovery needs the graph, not the length: a 16x shorter input is tried first (one cheap
    pass) when ``shape`` has at least ``16 * DISCOVERY_FRAMES`` frames, the full length when
    the model refuses it. A .pt2 (fixed ``batch``) keeps its exported shape.

    Raises:
        StageError: the model refused the full-length input.
    """

    def at_length(length: int) -> tuple[Discovery, int]:
        probe_shape = (*shape[:-1], length)
        first = probe_batch(probe_shape, 1.0, opts)[:1].to(device, model_dtype(model))
        return discover(model, first.expand(batch or 1, *probe_shape), opts.method), length

    if batch is None and shape[-1] >= 16 * DISCOVERY_FRAMES:
        try:
            return at_length(shape[-1] // 16)
        except StageError:
            pass  # the full length below
    return at_length(shape[-1])


def discovery_hint(loaded: LoadedModel, shape: tuple[int, ...], inferred: bool) -> str:
    """What to check when discovery fails at ``shape``."""
    if inferred:
        hint = f"input shape {','.join(map(str, shape))} was inferred; pass --input-shape"
    else:
        hint = "check --input-shape / --method"
    if loaded.example_inputs and shape != tuple(loaded.example_inputs[0].shape[1:]):
        example = ",".join(map(str, loaded.example_inputs[0].shape[1:]))
        hint += f"; the archive was exported for input shape {example}"
    return hint


def other_axis_findings(found: Discovery) -> list[Finding]:
    """An ``info`` finding for each stage that grows a non-time axis (not measured)."""
    return [
        Finding(
            "discovery",
            "info",
            other.name,
            f"{other.kind} grows a non-time axis (e.g. frequency) x{other.factor:g}: "
            "not a time stage, not measured",
        )
        for other in found.other_axis
    ]


def select_stages(stages: list[Stage], pattern: str | None) -> list[Stage]:
    """The stages whose name contains ``--stage``'s ``pattern`` (all when it is None)."""
    if not pattern:
        return stages
    chosen = [s for s in stages if pattern in s.name]
    if not chosen:
        names = ", ".join(s.name for s in stages) or "none"
        raise UsageError(f"--stage {pattern!r} matches no stage (stages: {names})")
    return chosen


def model_factor(found: Discovery, length: int, notes: list[str]) -> float:
    """The model's rate factor: its output/input length ratio at discovery (input ``length``),
    snapped by :func:`nominal_ratio` to the stages' factors; the model's input rate is the
    output's over it. A loose snap is noted."""
    out_len = found.output_shape[-1]
    factor, clean = nominal_ratio(out_len, length, [s.factor for s in found.stages])
    if not clean:
        notes.append(
            f"output/input length ratio {out_len / length:.4g} taken as "
            f"{factor:.4g}: the input rate is sample rate / {factor:.4g}"
        )
    return factor


def model_memory(found: Discovery, stages: list[Stage], length: int, frames: int) -> float:
    """Bytes the probe pass will hold, from the shapes seen at discovery (input ``length``)
    scaled to ``frames``: every probe's tapped input and output of each selected stage and
    the model output in float32, and four times the widest tap in float64 for its analysis."""
    scale = len(PROBES) * frames / length
    taps = [math.prod(s.in_shape) + math.prod(s.out_shape) for s in stages]
    widest = max((math.prod(s.out_shape) for s in stages), default=0)
    values = sum(taps) + math.prod(found.output_shape)
    return scale * (4 * values + 4 * 8 * widest)


def probe_model(
    model: nn.Module,
    shape: tuple[int, ...],
    fs: float,
    stages: list[Stage],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
    period: int,
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The batched probe pass: every probe of shape ``shape`` at the model's input rate ``fs``
    (the multitone of ``period`` samples) through the model (:func:`run_probes`). Returns the
    output per probe ``(P, k, T)`` and each stage's tapped ``(input, output)``, probe-major."""
    signals = probe_batch(shape, fs, opts, period).to(device, model_dtype(model))
    try:
        output, taps = run_probes(model, signals, stages, opts.method, batch)
    except StageError as exc:
        raise StageError(f"{exc} (check --input-shape / --method)") from None
    y_out = per_probe(output)
    if y_out is None:
        raise UsageError(f"model output of shape {tuple(output.shape)} has no probe-major batch")
    return y_out, taps


@dataclass
class StageContext:
    """What measuring each stage of one model shares: the model output's rate and length, the
    model's input rate and multitone period, and where findings and notes go."""

    sample_rate: float
    out_len: int
    fs0: float
    period: int
    groups: int
    settings: LineSettings
    opts: ModelOptions
    findings: list[Finding]
    notes: list[str]

    def not_measured(self, stage: Stage, why: str) -> None:
        """An ``info`` finding: the stage was found but not measured, because ``why``."""
        message = f"{stage.kind} x{stage.factor:g} found but not measured: {why}"
        self.findings.append(Finding("discovery", "info", stage.name, message))


def measure_model_stage(
    stage: Stage,
    tapped: tuple[torch.Tensor, torch.Tensor],
    later: list[float],
    done: list[StageResult],
    ctx: StageContext,
) -> StageResult | None:
    """Measure one stage on its ``tapped`` (input, output) at its own rates, or say why not.

    Its output rate is ``sample_rate / r``, ``r`` the model output's length over the stage
    output's snapped to a product of the ``later`` stages' factors (:func:`nominal_ratio`);
    its input rate is that over its integer factor. The stages measured before it (``done``)
    give the grids its lines are checked against and the lines its own are traced to. It is
    measured on the two middle periods of its tapped signals (``N_in = M · fs_in / fs0``).
    """
    x, y = (per_probe(t) for t in tapped)
    rate = integer_rate(stage)
    if rate is None:
        ctx.not_measured(stage, "its factor is not an integer")
        return None
    if y is None:
        ctx.not_measured(stage, "its output does not keep the probes along the batch")
        return None
    if not finite_or_finding(y, stage.name, ctx.findings):
        return None
    ratio, clean = nominal_ratio(ctx.out_len, y.shape[-1], later)
    fs_out = ctx.sample_rate / ratio
    if not clean:
        ctx.notes.append(
            f"{stage.name}: output/stage length ratio {ctx.out_len / y.shape[-1]:.4g} taken as "
            f"{ratio:.4g}, so its output rate is {fs_out:g} Hz"
        )
    fs_in = fs_out / rate
    if x is None or x.shape[-1] * rate < y.shape[-1] // 2:
        what = "complex" if tapped[0].is_complex() else "not a per-probe signal"
        ctx.not_measured(stage, f"its input is {what}, so the probes cannot be traced through it")
        return None
    if not x.any():
        ctx.not_measured(
            stage,
            "not reached by the probes (its input is zero for every probe: an unused branch, "
            "or one driven by the model's own noise)",
        )
        return None
    period_in = periods.whole(periods.rate_ratio(fs_in / ctx.fs0) * ctx.period)
    if period_in is None or period_in < 16:
        ctx.not_measured(stage, f"its rate {fs_in:g} Hz does not divide the probe period")
        return None
    lowest = min([*(r.fs_in_hz for r in done), fs_in])
    grid = max(1, round(lowest / (ctx.fs0 / ctx.period)))
    plan = StagePlan(fs_in, rate, period_in, ctx.period, ctx.groups, grid)
    try:
        measurement = measure_on_periods(x, y, plan, ctx.settings)
    except (ValueError, UsageError):
        ctx.not_measured(stage, "too few samples; lengthen --input-shape")
        return None
    upstream = done[-1].measurement.lines if done else []
    assign_origins(measurement.lines, upstream, fs_in, rate, stage.name, measurement.bin_hz / 2)
    details = stage_details(stage, rate)
    if ctx.opts.standalone:
        alone = measure_alone(stage, tapped[0], fs_in, ctx.opts, ctx.settings)
        if alone is not None:
            details["standalone"] = alone
    return StageResult(len(done), stage.name, kind_of(stage), rate, fs_in, measurement, details)


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


def stage_ratios(found: Discovery, stages: list[Stage], sample_rate: float, factor: float) -> list:
    """Each measurable stage's ``fs_in / fs0`` from the discovery pass's lengths (the same
    snapping :func:`measure_model_stage` applies)."""
    position = {s.name: i for i, s in enumerate(found.stages)}
    out_len, ratios = found.output_shape[-1], []
    for stage in stages:
        rate = integer_rate(stage)
        if rate is None or not stage.time_axis:
            continue
        later = [s.factor for s in found.stages[position[stage.name] + 1 :]]
        ratio, _ = nominal_ratio(out_len, stage.out_shape[-1], later)
        ratios.append(periods.rate_ratio(factor / (ratio * rate)))
    return ratios


def measure_all(
    model: nn.Module,
    shape: tuple[int, ...],
    stages: list[Stage],
    found: Discovery,
    batch: int | None,
    ctx: StageContext,
    device: torch.device,
    progress: Callable[[str], None],
) -> tuple[torch.Tensor, list[StageResult]]:
    """One batched probe pass of input ``shape`` and every selected stage measured on it."""
    progress(f"probing {len(stages)} stage(s) in one batched pass")
    y_out, taps = probe_model(model, shape, ctx.fs0, stages, batch, ctx.opts, device, ctx.period)
    ctx.out_len = y_out.shape[-1]
    position = {s.name: i for i, s in enumerate(found.stages)}
    results: list[StageResult] = []
    for stage in stages:
        progress(f"measuring {stage.name}")
        later = [s.factor for s in found.stages[position[stage.name] + 1 :]]
        result = measure_model_stage(stage, taps[stage.name], later, results, ctx)
        if result is not None:
            results.append(result)
    return y_out, results


def check_model(
    loaded: LoadedModel,
    opts: ModelOptions,
    thresholds: Thresholds | None = None,
    subject: dict | None = None,
    progress: Callable[[str], None] = lambda step: None,
) -> Report:
    """Check a loaded model; ``opts.sample_rate`` is the rate of its **output** audio.

    Resolves the input shape, discovers the stages on one probe, takes the model's input rate
    from its output/input length ratio (an inferred input is then lengthened), taps every
    selected stage in one batched probe pass, measures each stage at its own rates, traces the
    output's lines to the stages, and turns it all into findings.
    """
    sample_rate = check_sample_rate(opts.sample_rate)
    thresholds = thresholds or load_thresholds()
    settings = LineSettings(thresholds.line_floor_db, thresholds.line_prominence_db)
    device = resolve_device(opts.device)
    model = loaded.module.to(device)
    notes = list(loaded.notes)

    shape, batch, inferred = resolve_input_shape(loaded, model, opts.input_shape, notes)
    progress("discovering stages")
    try:
        found, length = discover_stages(model, shape, batch, opts, device)
    except StageError as exc:
        raise StageError(f"{exc} ({discovery_hint(loaded, shape, inferred)})") from None
    findings = other_axis_findings(found)
    stages = select_stages(found.stages, opts.stage)
    factor = model_factor(found, length, notes)
    fs_model_in = sample_rate / factor
    groups = input_groups(math.prod(shape[:-1]))
    ratios = stage_ratios(found, stages, sample_rate, factor) or [periods.Fraction(1)]
    requested = None if inferred else shape[-1]
    period, frames = periods.choose_period(ratios, 16, requested, factor, notes)
    if batch is not None and frames > shape[-1]:
        raise UsageError(
            f"the archive fixes the input length at {shape[-1]} samples; the probe needs at "
            f"least {frames}: re-export with a longer example input"
        )
    shape = (*shape[:-1], frames)
    check_memory(
        model_memory(found, stages, length, shape[-1]),
        "shorten --input-shape's time axis, or check fewer stages with --stage",
    )

    for attempt, lead in enumerate((None, *RETRY_LEADS)):
        if lead is not None:
            frames = max(frames, math.ceil((PERIODS + 2 * lead) * period))
            shape = (*shape[:-1], frames)
        ctx = StageContext(sample_rate, 0, fs_model_in, period, groups, settings, opts, [], [])
        y_out, results = measure_all(model, shape, stages, found, batch, ctx, device, progress)
        settled = all(
            r.measurement.periodicity_error_db <= PERIODICITY_TOLERANCE_DB for r in results
        )
        if settled or batch is not None or attempt == len(RETRY_LEADS):
            break
    if attempt:
        notes.append(
            f"lengthened the input to {frames} samples ({frames / period:g} probe periods) "
            "so the stages could settle"
        )
    findings += ctx.findings
    notes += ctx.notes
    notes.append(f"analysed {found.output_index} of shape {tuple(y_out.shape[1:])} per probe")
    ok_output = finite_or_finding(y_out, "output", findings)

    output_lines_ = None
    if ok_output and results:
        progress("tracing output lines")
        output_lines_ = trace_output_lines(y_out, results, ctx)
    for result in results:  # the cause texts say whose weights these are
        result.details.setdefault("weights", "learned" if loaded.trained else "initialization")
        findings += stage_findings(result, thresholds)
    findings += periodicity_findings(results, notes)
    if results:
        findings += chain_findings(results, output_lines_ or [], thresholds)
    if not found.stages:
        message = "no upsampling stage found: nothing lengthens the time axis"
        notes.append(message)
        findings.append(Finding("discovery", "info", "model", message))
    return Report(
        subject=subject or {"kind": "model"},
        sample_rate_hz=sample_rate,
        probe_samples=shape[-1],
        seed=opts.seed,
        device=str(device),
        thresholds=thresholds,
        stages=results,
        findings=findings,
        notes=notes,
        output_lines=output_lines_,
        output_excerpts=(
            {
                name: excerpt(y_out[i][..., y_out.shape[-1] // 8 :], sample_rate)
                for i, name in enumerate(PROBES)
            }
            if ok_output
            else None
        ),  # fmt: skip
    )


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
