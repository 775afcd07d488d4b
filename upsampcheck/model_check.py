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
from dataclasses import dataclass

import torch
from torch import nn

from . import model_periods as periods
from .bounds import check_memory
from .check import PERIODS, check_sample_rate, resolve_device
from .config import Thresholds, load_thresholds
from .errors import StageError, UsageError
from .measure.analysis import BLOCK_VALUES, LineSettings, excerpt
from .measure.probes import PROBES
from .model_stages import (
    Lengths,
    PassPlan,
    StageContext,
    StageLayout,
    finish_stage,
    finite_or_finding,
    input_groups,
    integer_rate,
    length_ratio,
    model_dtype,
    nominal_ratio,
    probe_batch,
    probe_model,
    trace_output_lines,
)
from .report.findings import (
    PERIODICITY_TOLERANCE_DB,
    Finding,
    Report,
    StageResult,
    chain_findings,
    periodicity_findings,
    stage_findings,
)
from .subjects.discover import Discovery, Stage, discover, module_types
from .subjects.identity import groups_of
from .subjects.loading import LoadedModel

RETRY_LEADS = (2.0, 4.0)
"""Lead-in periods of the probe passes after a stage has not settled."""
DISCOVERY_FRAMES = 256
"""Frames of an inferred input at discovery (its length is set from the rates after)."""


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
        return (), batch, True  # no conv to read it from: candidates are tried at discovery
    notes.append(f"input shape inferred from the first conv: {leading[0]} channel(s)")
    return (*leading, DISCOVERY_FRAMES), batch, True


CANDIDATE_CHANNELS = (1, 2, 80, 100, 128)
"""Inputs a model of this kind usually takes, besides its first weight's widths: mono and
stereo waveforms, and the common mel sizes."""


def candidate_shapes(model: nn.Module, first: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Shapes to try when the inferred ``first`` fails (or there is none): every width of the
    first few weights (a latent or mel size, a branch's channels), then
    :data:`CANDIDATE_CHANNELS`, each by :data:`DISCOVERY_FRAMES` frames, without repeats."""
    widths: list[int] = []
    for parameter in list(model.parameters())[:6]:
        widths += [d for d in parameter.shape[:2] if 1 <= d <= 1024]
    shapes = [(w, DISCOVERY_FRAMES) for w in [*widths, *CANDIDATE_CHANNELS]]
    return [s for s in dict.fromkeys(shapes) if s != first]


def discover_with_candidates(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
    notes: list[str],
) -> tuple[Discovery, int, tuple[int, ...]]:
    """Discovery on an inferred ``shape``; when the model refuses it (or there is none), on
    :func:`candidate_shapes` in turn. The shape that worked is noted; when none does, the
    error lists every shape tried."""
    tried, first_error = [], None
    for candidate in ([shape] if shape else []) + candidate_shapes(model, shape):
        try:
            found, length = discover_stages(model, candidate, batch, opts, device)
        except StageError as exc:
            tried.append(",".join(map(str, candidate)))
            first_error = first_error or exc
            continue
        if candidate != shape:
            notes.append(
                f"input shape {','.join(map(str, candidate))} found by trying candidates "
                f"(refused: {'; '.join(tried) or 'none inferred'}); pass --input-shape to be sure"
            )
        return found, length, candidate
    reason = f"; first failure: {first_error}" if first_error else ""
    raise UsageError(
        f"cannot infer the input shape: the model refused every candidate "
        f"({'; '.join(tried)}){reason}; pass --input-shape D1,...,T"
    )


def discover_stages(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
    shorter: bool = True,
) -> tuple[Discovery, int]:
    """:func:`~.subjects.discover.discover` on the first probe of shape ``shape`` (repeated
    to ``batch``), and the input length it ran at.

    Discovery needs the graph, not the length: unless ``shorter`` is False, a 16x shorter
    input is tried first (one cheap pass) when ``shape`` has at least ``16 *
    DISCOVERY_FRAMES`` frames, the full length when the model refuses it. A .pt2 (fixed
    ``batch``) keeps its exported shape.

    Raises:
        StageError: the model refused the full-length input.
    """

    def at_length(length: int) -> tuple[Discovery, int]:
        probe_shape = (*shape[:-1], length)
        first = probe_batch(probe_shape, 1.0, opts)[:1].to(device, model_dtype(model))
        return discover(model, first.expand(batch or 1, *probe_shape), opts.method), length

    if shorter and batch is None and shape[-1] >= 16 * DISCOVERY_FRAMES:
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


SCALING_TOLERANCE = 0.25
"""A longer input's output this much shorter than the length ratio predicts is clipped."""


def fixed_length_findings(out_short: int, short: int, out_long: int, long: int) -> list[Finding]:
    """A warning when the output length did not follow the input length between discovery
    (``short`` in, ``out_short`` out) and the probe pass (``long`` in, ``out_long`` out): an op
    with a fixed output size, or a trace that baked in its example's length (EnCodec traced at
    16000 samples), so rates read off length ratios mean nothing.

    Two shapes of it: the output is the same length for both inputs (within a sample), or the
    longer input's output falls more than :data:`SCALING_TOLERANCE` short of what the shorter
    one's length ratio predicts (a trace that cut ``y[..., :4 T]`` at its example's ``4 T``
    passes short inputs whole and clips long ones)."""
    if short == long:
        return []
    (a, out_a), (b, out_b) = sorted([(short, out_short), (long, out_long)])
    fix = (
        f"trace or export the model at the input length the probe uses ({long} samples) or "
        "with a dynamic time axis, or check the eager model"
    )
    if abs(out_long - out_short) <= 1:
        message = (
            f"the output length does not follow the input: {out_long} samples for inputs of "
            f"{short} and {long}; the model (or its trace) fixes its output length, so the "
            "stage rates and lines below are not the model's"
        )
    elif out_b < (1 - SCALING_TOLERANCE) * out_a * b / a:
        message = (
            f"the output length does not follow the input: {out_a} samples for {a} in (x"
            f"{out_a / a:.4g}) but {out_b} for {b} in (x{out_b / b:.4g}); the model (or its "
            "trace) clips its output at a fixed length, so the stage rates and lines below "
            "are not the model's"
        )
    else:
        return []
    return [Finding("discovery", "warn", "model", message, "a fixed output length", fix)]


def model_memory(found: Discovery, stages: list[Stage], length: int, frames: int) -> float:
    """Bytes the probe pass adds to the model's own, from the shapes seen at discovery (input
    ``length``) scaled to ``frames``: the model output in float32, and, for the widest stage
    while it is measured inside the pass, its input and output in float32 plus a float64 block
    of each and their mean periods (:func:`~.measure.analysis.reduce_periods`)."""
    scale = len(PROBES) * frames / length
    widest = max((math.prod(s.in_shape) + math.prod(s.out_shape) for s in stages), default=0)
    return scale * 4 * (math.prod(found.output_shape) + 2 * widest) + 2 * 8 * BLOCK_VALUES


def stage_layouts(
    found: Discovery, stages: list[Stage], sample_rate: float, here: Lengths, ref: Lengths | None
) -> tuple[list[StageLayout], bool]:
    """Each selected stage's factor and rates from discovery (:func:`length_ratio`): its
    output rate is ``sample_rate`` over that ratio snapped to the factors found
    (:func:`nominal_ratio`); its input rate that over its factor, so every rate is the output
    rate times a ratio of integers. Also whether every snap was clean."""
    position = {s.name: i for i, s in enumerate(found.stages)}
    every = [r for s in found.stages if (r := integer_rate(s))]
    layouts, clean = [], True
    for stage in stages:
        rate = integer_rate(stage)
        later = [s.factor for s in found.stages[position[stage.name] + 1 :]]
        ratio, ok = nominal_ratio(*length_ratio(stage.name, here, ref), later, every)
        clean = clean and ok
        fs_out = sample_rate / ratio
        layouts.append(StageLayout(stage, rate, fs_out / rate if rate else fs_out, fs_out))
    return layouts, clean


def choose_model_period(
    layouts: list[StageLayout], fs0: float, requested: int | None, factor: float,
    notes: list[str],
) -> tuple[int, int]:  # fmt: skip
    """:func:`~.model_periods.choose_period` for the stages' input rates over ``fs0``."""
    ratios = [periods.rate_ratio(lay.fs_in / fs0) for lay in layouts if lay.rate]
    return periods.choose_period(ratios or [periods.Fraction(1)], 16, requested, factor, notes)


def identical_groups(layouts: list[StageLayout]) -> dict[str, list[str]]:
    """``{name: names of its group}`` for stages that are the same operation with the same
    weights at the same input rate (:func:`~.subjects.identity.groups_of`)."""
    pairs = [(lay.stage, round(lay.fs_in, 6)) for lay in layouts if lay.plan is not None]
    found = {}
    for group in groups_of(pairs):
        names = [s.name for s in group]
        found |= dict.fromkeys(names, names)
    return found


def measure_all(
    model: nn.Module,
    shape: tuple[int, ...],
    stages: list[Stage],
    planner: PassPlan,
    batch: int | None,
    ctx: StageContext,
    device: torch.device,
    progress: Callable[[str], None],
) -> tuple[torch.Tensor, list[StageResult]]:
    """One batched probe pass of input ``shape``, every selected stage laid out and measured
    inside it, then each stage's attribution and standalone drive, once per group of identical
    stages (:func:`identical_groups`)."""
    progress(f"probing and measuring {len(stages)} stage(s) in one batched pass")
    y_out, taps = probe_model(
        model, shape, ctx.fs0, stages, planner, batch, ctx.opts, device, ctx.settings
    )
    layouts = [taps[s.name].layout for s in stages]
    ctx.group_of = identical_groups(layouts)
    distinct = len({tuple(ctx.group_of.get(lay.stage.name, [lay.stage.name])) for lay in layouts})
    progress(f"tracing lines; driving {distinct} distinct stage(s) alone")
    results: list[StageResult] = []
    for stage in stages:
        result = finish_stage(taps[stage.name], results, ctx)
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
    if inferred and batch is None:
        found, length, shape = discover_with_candidates(model, shape, batch, opts, device, notes)
    else:
        try:
            found, length = discover_stages(model, shape, batch, opts, device)
        except StageError as exc:
            raise StageError(f"{exc} ({discovery_hint(loaded, shape, inferred)})") from None
    findings = other_axis_findings(found)
    stages = select_stages(found.stages, opts.stage)
    factor = model_factor(found, length, notes)
    fs_model_in = sample_rate / factor
    groups = input_groups(math.prod(shape[:-1]))
    requested = None if inferred else shape[-1]
    here, ref, sized = Lengths.of(found, length), None, (found, length)
    layouts, clean = stage_layouts(found, stages, sample_rate, here, None)
    period, frames = choose_model_period(layouts, fs_model_in, requested, factor, [])
    if not clean and batch is None and frames > length:
        # Loose snaps at the short discovery length: discover again at the probe's length and
        # take the rates from how much each stage grew in between.
        progress("discovering again at the probe length for exact rates")
        try:
            longer, _ = discover_stages(model, (*shape[:-1], frames), batch, opts, device, False)
            ref, here = here, Lengths.of(longer, frames)
            layouts, _ = stage_layouts(found, stages, sample_rate, here, ref)
            sized = (longer, frames)
        except StageError:
            pass  # the rates from the first pass, as they are
    period, frames = choose_model_period(layouts, fs_model_in, requested, factor, notes)
    if batch is not None and frames > shape[-1]:
        raise UsageError(
            f"the archive fixes the input length at {shape[-1]} samples; the probe needs at "
            f"least {frames}: re-export with a longer example input"
        )
    shape = (*shape[:-1], frames)
    named = {s.name: s for s in found.stages} | {s.name: s for s in sized[0].stages}
    check_memory(
        model_memory(sized[0], [named[s.name] for s in stages], sized[1], shape[-1]),
        "shorten --input-shape's time axis, or check fewer stages with --stage",
    )

    for attempt, lead in enumerate((None, *RETRY_LEADS)):
        if lead is not None:
            frames = max(frames, math.ceil((PERIODS + 2 * lead) * period))
            shape = (*shape[:-1], frames)
        ctx = StageContext(sample_rate, fs_model_in, period, groups, settings, opts, [], [])
        planner = PassPlan(
            sample_rate, fs_model_in, period, groups, round(factor * frames),
            [r for s in found.stages if (r := integer_rate(s))],
            {s.name: [t.factor for t in found.stages[i + 1 :]] for i, s in enumerate(found.stages)},
            ctx.notes, frames, factor, here if here.input != frames else ref,
        )  # fmt: skip
        y_out, results = measure_all(model, shape, stages, planner, batch, ctx, device, progress)
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
    findings += fixed_length_findings(found.output_shape[-1], length, y_out.shape[-1], shape[-1])
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
        subject={**(subject or {"kind": "model"}), "input_shape": list(shape)},
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
