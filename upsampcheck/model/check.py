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

Every probe is periodic in ``M`` input samples (:mod:`.periods`): each stage is measured
on whole periods in the middle of its tapped signals (:func:`~.measure.analysis.measure_stage`),
image rejection included, whatever its rate. A stage that has not settled there (a receptive
field longer than the lead-in, randomness inside the model) is probed once more with a longer
lead-in (:func:`.retry.retry_frames`: at most twice the first pass's input, and no longer than the
run so far allows, so the retry at most doubles the run; a note gives the cost),
and a warning says so if it still differs period to period. A trace whose output length is
constant is analysed at the length it was traced at, or refused naming it
(:func:`.fixed_length.at_traced_length`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..bounds import check_memory, fits_memory, gib
from ..check import check_sample_rate, resolve_device
from ..config import Thresholds, load_thresholds
from ..errors import StageError, UsageError
from ..measure.analysis import LineSettings, excerpt
from ..measure.probes import PROBES
from ..phases import phase
from ..report.findings import (
    Finding,
    Report,
    StageResult,
    chain_findings,
    periodicity_findings,
    stage_findings,
)
from ..subjects.discover import Discovery, Stage
from ..subjects.identity import groups_of
from ..subjects.loading import LoadedModel
from . import periods
from .discovery import (
    discover_stages,
    discovery_hint,
    input_memory,
    model_factor,
    other_axis_findings,
    resolve_input_shape,
    search_input_shape,
    select_stages,
)
from .fixed_length import at_traced_length, constant_output, fixed_length_findings
from .footprint import ModelWork, model_memory
from .output import output_offset
from .rates import Lengths, PassPlan, StageLayout, length_ratio, rated, stage_factors
from .retry import accepted_length, retry_frames, retry_growth, unsettled
from .short_passes import short_passes
from .stages import StageContext, finish_stage, trace_output_lines
from .taps import Tapped, finite_or_finding, input_groups, probe_model, shared_groups_note


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
    short_probe: bool = False
    """Keep a given ``input_shape``'s length below the full-resolution probe
    (:func:`~.periods.choose_period`'s ``coarse``)."""


def stage_layouts(
    found: Discovery, stages: list[Stage], sample_rate: float, here: Lengths, ref: Lengths | None
) -> tuple[list[StageLayout], bool]:
    """Each selected stage's factor and rates from discovery (:func:`length_ratio`): its
    output rate is ``sample_rate`` over that ratio snapped to the factors found
    (:func:`nominal_ratio`); its input rate that over its factor, so every rate is the output
    rate times a ratio of integers. Also whether every snap was clean."""
    every, later = stage_factors(found)
    layouts, clean = [], True
    for stage in stages:
        lengths = length_ratio(stage.name, here, ref)
        layout, ok = rated(stage, lengths, later[stage.name], every, sample_rate)
        layouts.append(layout)
        clean = clean and ok
    return layouts, clean


def choose_model_period(
    layouts: list[StageLayout], fs0: float, requested: int | None, factor: float,
    notes: list[str], groups: int = 1, coarse: bool = False,
) -> tuple[int, int]:  # fmt: skip
    """:func:`~.periods.choose_period` for the stages' input rates over ``fs0``."""
    ratios = [periods.rate_ratio(lay.fs_in / fs0) for lay in layouts if lay.rate]
    ratios = ratios or [periods.Fraction(1)]
    return periods.choose_period(ratios, 16, requested, factor, notes, groups, coarse)


def identical_groups(layouts: list[StageLayout]) -> dict[str, list[str]]:
    """``{name: names of its group}`` for stages that are the same operation with the same
    weights at the same input rate (:func:`~.subjects.identity.groups_of`)."""
    pairs = [(lay.stage, round(lay.fs_in, 6)) for lay in layouts if lay.plan is not None]
    found = {}
    for group in groups_of(pairs):
        names = [s.name for s in group]
        found |= dict.fromkeys(names, names)
    return found


@phase("probe pass")
def probe_pass(
    model: nn.Module,
    shape: tuple[int, ...],
    stages: list[Stage],
    planner: PassPlan,
    batch: int | None,
    ctx: StageContext,
    device: torch.device,
    progress: Callable[[str], None],
) -> tuple[torch.Tensor, dict[str, Tapped]]:
    """One batched probe pass of input ``shape``, every selected stage laid out and measured
    inside it (:func:`~.taps.probe_model`)."""
    progress(f"probing and measuring {len(stages)} stage(s) in one batched pass")
    y_out, taps = probe_model(
        model, shape, ctx.fs0, stages, planner, batch, ctx.opts, device, ctx.settings
    )
    if planner.unreadable:  # rates that are no ratio of the stages' factors: never reported
        raise UsageError(
            f"the rates of {', '.join(planner.unreadable[:3])} cannot be read at input "
            f"{','.join(map(str, shape))}: their length ratio to the output (in brackets) is no "
            "product of the stages' factors, so the model pads or crops to a length of its own; "
            "pass --input-shape at the length it runs at (its training segment), or check fewer "
            "stages with --stage"
        )
    return y_out, taps


def finish_all(
    stages: list[Stage], taps: dict[str, Tapped], ctx: StageContext,
    progress: Callable[[str], None],
) -> list[StageResult]:  # fmt: skip
    """Each stage's attribution and standalone drive from the pass that is kept, once per
    group of identical stages (:func:`identical_groups`)."""
    layouts = [taps[s.name].layout for s in stages]
    ctx.group_of = identical_groups(layouts)
    distinct = len({tuple(ctx.group_of.get(lay.stage.name, [lay.stage.name])) for lay in layouts})
    progress(f"tracing lines; driving {distinct} distinct stage(s) alone")
    results: list[StageResult] = []
    for stage in stages:
        result = finish_stage(taps[stage.name], results, ctx)
        if result is not None:
            results.append(result)
    return results


def unless_loose(
    found: Discovery, length: int, model: nn.Module, shape: tuple[int, ...],
    opts: ModelOptions, device: torch.device, sample_rate: float,
) -> tuple[Discovery, int]:  # fmt: skip
    """A discovery at a short ``length`` as it is when every stage's length snaps cleanly to
    its factor there; else the discovery at ``shape``'s own length (padding that dominates a
    short input, as in Demucs, would otherwise size the probe from wrong rates)."""
    _, clean = stage_layouts(found, found.stages, sample_rate, Lengths.of(found, length), None)
    if clean:
        return found, length
    try:
        return discover_stages(model, shape, None, opts, device, shorter=False)
    except StageError:
        return found, length


@phase("discovery")
def discover_model(
    loaded: LoadedModel,
    opts: ModelOptions,
    device: torch.device,
    notes: list[str],
    progress: Callable[[str], None] = lambda step: None,
    memory: bool = True,
) -> tuple[Discovery, int, tuple[int, ...], int | None, bool, int, bool]:
    """The discovery both the check and ``--list-stages`` stand on: the input shape (given,
    from the archive, or searched for), the stages found on a short probe (kept when their
    rates hold, else found again at the full length), a fixed output length handled
    (:func:`.fixed_length.at_traced_length`), and a note when the model draws random numbers
    (tested on the short pass's input). Returns the discovery, the input length it ran
    at, the input shape, the batch an archive fixes, whether the shape was inferred, the
    multiple an inferred length keeps, and whether the probe's length is fixed. With
    ``memory`` False (``--list-stages``) the forward's memory is not measured."""
    loaded.module.to(device)  # for its effect: a project's to() may return anything
    model = loaded.module
    sample_rate = check_sample_rate(opts.sample_rate)
    shape, batch, inferred = resolve_input_shape(loaded, model, opts.input_shape, notes)
    check_memory(input_memory(shape), "shorten --input-shape's time axis")
    progress("discovering stages")
    multiple = 1  # an inferred length's multiple (its strides', or one the model's error named)
    if inferred and batch is None:
        found, length, shape, multiple = search_input_shape(
            model, shape, batch, opts, device, notes
        )
    else:
        try:
            found, length = discover_stages(model, shape, batch, opts, device)
        except StageError as exc:
            raise StageError(f"{exc} ({discovery_hint(loaded, shape, inferred)})") from None
    fixed = batch is not None  # the probe runs at the input length it is given, no other
    short = length  # the short pass's length: the randomness test runs there, not longer
    if batch is None and (out := constant_output(found, length)) is not None:
        found, length, shape = at_traced_length(
            loaded, model, found, length, shape, inferred, opts, device, out, notes
        )
        fixed = True
    if not fixed and length < shape[-1]:  # a short discovery: keep it if its rates hold
        found, length = unless_loose(found, length, model, shape, opts, device, sample_rate)
    tested = (*shape[:-1], length if fixed else min(short, length))
    found = short_passes(model, found, tested, multiple, fixed, batch, opts, device, notes, memory)
    return found, length, shape, batch, inferred, multiple, fixed


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
    with ModelWork(loaded.module) as work:
        return checked(loaded, opts, thresholds, subject, progress, work)


def checked(
    loaded: LoadedModel, opts: ModelOptions, thresholds: Thresholds | None,
    subject: dict | None, progress: Callable[[str], None], work: ModelWork,
) -> Report:  # fmt: skip
    """:func:`check_model`, the model's work counted in ``work``."""
    sample_rate = check_sample_rate(opts.sample_rate)
    thresholds = thresholds or load_thresholds()
    settings = LineSettings(thresholds.line_floor_db, thresholds.line_prominence_db)
    device = resolve_device(opts.device)
    notes = list(loaded.notes)
    found, length, shape, batch, inferred, multiple, fixed = discover_model(
        loaded, opts, device, notes, progress
    )
    model = loaded.module
    findings = other_axis_findings(found)
    stages = select_stages(found.stages, opts.stage)
    factor = model_factor(found, length, notes)
    fs_model_in = sample_rate / factor
    groups = input_groups(math.prod(shape[:-1]))
    if (shared := shared_groups_note(math.prod(shape[:-1]))) is not None:
        notes.append(shared)
    requested = None if inferred else shape[-1]
    least = shape[-1] if inferred else 1  # an inferred length that ran, or more

    def fitted(frames: int) -> int:  # a length the model takes: never shorter, its multiple
        return -(-max(frames, least) // multiple) * multiple

    here, ref, sized = Lengths.of(found, length), None, (found, length)
    driven = [s for s in stages if s.name not in found.input_free]  # set the probe's period
    layouts, clean = stage_layouts(found, driven, sample_rate, here, None)
    period, frames = choose_model_period(
        layouts, fs_model_in, requested, factor, [], groups, coarse=opts.short_probe
    )
    frames = fitted(frames)
    if (
        not clean
        and not fixed
        and frames > length
        and fits_memory(model_memory(found, stages, length, frames, found.forward_cost))
    ):
        # Loose snaps at the short discovery length: discover again at the probe's length and
        # take the rates from how much each stage grew in between.
        progress("discovering again at the probe length for exact rates")
        try:
            with phase("discovery"):
                longer, _ = discover_stages(
                    model, (*shape[:-1], frames), batch, opts, device, False
                )
            ref, here = here, Lengths.of(longer, frames)
            layouts, _ = stage_layouts(found, driven, sample_rate, here, ref)
            sized = (longer, frames)
        except StageError:
            pass  # the rates from the first pass, as they are
    period, frames = choose_model_period(
        layouts, fs_model_in, requested, factor, notes, groups, coarse=opts.short_probe
    )
    frames = fitted(frames)
    if fixed and frames != shape[-1]:  # a fixed length: the longest period it holds
        ratios = [periods.rate_ratio(lay.fs_in / fs_model_in) for lay in layouts if lay.rate]
        notes[:] = [n for n in notes if not n.startswith("input length ")]
        period, frames = periods.fixed_period(ratios, shape[-1], notes), shape[-1]
    named = {s.name: s for s in found.stages} | {s.name: s for s in sized[0].stages}
    measured = [named[s.name] for s in stages]
    hint = "shorten --input-shape's time axis, or check fewer stages with --stage"
    if requested is not None and frames > requested:  # lengthened by the stages, not given
        hint = (
            f"the stages' rates ask for {frames} input samples ({frames / period:.3g} periods "
            f"of {period}) where {requested} were given; check fewer stages with --stage"
        )
    if inferred and not fixed:  # a length the tool chose: a shorter one before a refusal
        shortest = fitted(choose_model_period(layouts, fs_model_in, 1, factor, [], groups)[1])
        needed = model_memory(sized[0], measured, sized[1], frames, found.forward_cost)
        if shortest < frames and not fits_memory(needed):
            period, frames = choose_model_period(layouts, fs_model_in, shortest, factor, [], groups)
            notes.append(
                f"input length {frames} samples, the shortest probe the stages allow: the "
                f"longer default would need about {gib(needed)} of memory; pass --input-shape "
                "to choose"
            )
        hint = (
            f"at the inferred input shape {','.join(map(str, (*shape[:-1], frames)))}, the "
            "shortest probe its stages allow; check fewer stages with --stage"
        )
    shape = (*shape[:-1], frames)
    check_memory(model_memory(sized[0], measured, sized[1], shape[-1], found.forward_cost), hint)

    def probe_at(frames: int) -> tuple[StageContext, torch.Tensor, dict[str, Tapped]]:
        ctx = StageContext(sample_rate, fs_model_in, period, groups, settings, opts, [], [])
        planner = PassPlan(
            sample_rate, fs_model_in, period, groups, round(factor * frames),
            *stage_factors(found), ctx.notes, frames, factor,
            here if here.input != frames else ref, found.input_free,
        )  # fmt: skip
        shaped = (*shape[:-1], frames)
        y_out, taps = probe_pass(model, shaped, stages, planner, batch, ctx, device, progress)
        return ctx, y_out, taps

    try:
        ctx, y_out, taps = probe_at(frames)
    except StageError as exc:  # a length the tool chose: one near it the model takes
        again = accepted_length(model, shape, frames, least, batch, opts, device) if (
            inferred and not fixed
        ) else None  # fmt: skip
        if again is None:
            raise
        again, unit = again
        check_memory(model_memory(sized[0], measured, sized[1], again, found.forward_cost), hint)
        ctx, y_out, taps = probe_at(again)
        said = " ".join(str(exc).split())[:160]
        notes.append(
            f"the model refused input length {frames} ({said}); ran at {again}: the {least} "
            f"its shape was found at plus a multiple of {unit}, a length it takes"
        )
        frames, shape = again, (*shape[:-1], again)
    late = [] if fixed else unsettled(stages, taps)
    growth = retry_growth(work.samples, len(PROBES) * math.prod(shape[:-1]) * frames)
    longer = retry_frames(frames, period, growth)
    longer = fitted(longer) if late and longer is not None else frames
    if late and longer == frames:
        wanted = fitted(retry_frames(frames, period) or frames + 2 * period)
        notes.append(
            f"{', '.join(late)} had not settled; one more period of lead-in each side would "
            "more than double the model's work in this run, so it was not tried (--input-shape "
            f"{','.join(map(str, (*shape[:-1], wanted)))} gives it a longer lead-in)"
        )
    if late and longer > frames:
        if fits_memory(model_memory(sized[0], measured, sized[1], longer, found.forward_cost)):
            progress(f"probing again with a longer lead-in: {', '.join(late)} had not settled")
            ctx, y_out, taps = probe_at(longer)
            notes.append(
                f"lengthened the lead-in by {(longer - frames) // 2} samples each side for "
                f"{', '.join(late)}, which had not settled: one more probe pass of {longer} "
                f"input samples, {longer / frames:.2f}x the first pass's {frames}"
            )
            frames, shape = longer, (*shape[:-1], longer)
        else:
            notes.append(
                f"{', '.join(late)} had not settled; a longer lead-in ({longer} input samples) "
                "would not fit in memory"
            )
    results = finish_all(stages, taps, ctx, progress)
    findings += ctx.findings
    notes += ctx.notes
    notes.append(f"analysed {found.output_index} of shape {tuple(y_out.shape[1:])} per probe")
    findings += fixed_length_findings(found.output_shape[-1], length, y_out.shape[-1], shape[-1])
    ok_output = finite_or_finding(y_out, "output", findings)

    output_lines_ = None
    if ok_output and (results or ctx.unmeasured):
        progress("tracing output lines")
        output_lines_ = trace_output_lines(y_out, results, ctx)
        offset = output_offset(y_out, ctx, results, thresholds)
        findings += [offset] if offset is not None else []
    for result in results:  # the cause texts say whose weights these are
        result.details.setdefault("weights", "learned" if loaded.trained else "initialization")
        findings += stage_findings(result, thresholds)
    findings += periodicity_findings(results, notes)
    if results or output_lines_:
        findings += chain_findings(results, output_lines_ or [], thresholds, ctx.unmeasured)
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
