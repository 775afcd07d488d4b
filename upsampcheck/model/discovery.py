"""Before the probe pass: the model input's shape (given, from an archive, inferred from the
first conv, or found by trying what the model's layers and errors say, :mod:`.shapes`), the
stages discovered on one short probe, the model's own rate factor, and what discovery found but
will not measure.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..bounds import INPUT_DIMS, INPUT_VALUES, PROBE_SAMPLES
from ..errors import StageError, UsageError
from ..measure.probes import PROBES
from ..report.findings import Finding
from ..subjects.discover import Discovery, Stage, module_types
from ..subjects.loading import LoadedModel
from .footprint import counted_discovery, noise_input
from .rates import nominal_ratio
from .seeding import draws_random
from .shapes import DISCOVERY_FRAMES, Candidate, ShapeSearch, first_length  # noqa: F401

if TYPE_CHECKING:
    from .check import ModelOptions

SHORT_FRAMES = 64
"""Discovery first tries ``max(SHORT_FRAMES, T // 16)`` frames: it needs the graph, not the
length, and at an inferred shape's :data:`DISCOVERY_FRAMES` it would cost a fifth of the probe
pass or more (twice the DAC decoder's probe length)."""
SLOPE_FRAMES = 1024
"""A discovery at up to this many frames (or one that found a shape-growth stage) runs twice,
at ``T`` and ``2 T``: growth between the passes gives factors without padding or cropping."""
SCALING_TOLERANCE = 0.25
"""A longer input's output this much shorter than the length ratio predicts is clipped."""


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,16000"`` -> ``(1, 16000)``: every dimension a positive integer, at most
    :data:`~upsampcheck.bounds.INPUT_DIMS` of them, the time axis (last) no longer than the
    longest probe (:data:`~upsampcheck.bounds.PROBE_SAMPLES`) and at most
    :data:`~upsampcheck.bounds.INPUT_VALUES` values in all: checked before anything runs
    (``1,1000000000`` used to run discovery for minutes at 7 GB)."""
    shown = text if len(text) <= 40 else text[:37] + "..."
    parts = text.replace("x", ",").split(",")
    if len(parts) > INPUT_DIMS:
        raise UsageError(f"--input-shape {shown!r}: at most {INPUT_DIMS} dimensions")
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        raise UsageError(f"--input-shape {shown!r}: expected integers like 1,16000") from None
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {shown!r}: every dimension must be >= 1")
    if shape[-1] > PROBE_SAMPLES[1]:
        raise UsageError(
            f"--input-shape {shown!r}: the time axis (last) must be at most"
            f" {PROBE_SAMPLES[1]} samples"
        )
    if math.prod(shape) > INPUT_VALUES:
        raise UsageError(
            f"--input-shape {shown!r}: at most {INPUT_VALUES} values per example"
            f" (got {math.prod(shape)})"
        )
    return shape


def input_memory(shape: tuple[int, ...]) -> float:
    """Bytes the probe batch of ``shape`` takes before the model adds its own: every probe's
    input in float32, and at least as much again for its output (an upsampler's is longer;
    the full estimate follows discovery, :func:`~.footprint.model_memory`)."""
    return 2 * len(PROBES) * 4 * math.prod(shape)


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
    channels (:func:`infer_channels`) by :data:`~.shapes.DISCOVERY_FRAMES` frames, or by the
    longest kernel where that is longer (:func:`~.shapes.first_length`); the probe's length is
    set once the rates are known. A note says where it came from.
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
    length, _, why = first_length(model)
    notes.append(
        f"input shape inferred from the first conv: {leading[0]} channel(s)"
        + (f"; {why}" if why else "")
    )
    return (*leading, length), batch, True


def weight_widths(model: nn.Module) -> list[int]:
    """Every width of the first few weights (a latent or mel size, a branch's channels)."""
    widths: list[int] = []
    for parameter in list(model.parameters())[:6]:
        widths += [d for d in parameter.shape[:2] if 1 <= d <= 1024]
    return widths


def search_input_shape(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
    notes: list[str],
) -> tuple[Discovery, int, tuple[int, ...], int]:
    """Discovery on an inferred ``shape``; when the model refuses it (or there is none), on the
    candidates a :class:`~.shapes.ShapeSearch` makes from the model's layers and from what each
    refusal says. Returns the discovery, its input length, the shape that worked and the
    multiple its length must keep (the probe's length is rounded to it). The shape is noted
    with how it was found; when none works, the error lists every shape tried."""
    first = None
    if shape:
        _, multiple, why = first_length(model)
        first = Candidate(shape, multiple, (why,) if why else ())
    search = ShapeSearch(model, first, weight_widths(model))
    first_error = None
    for candidate in search:
        try:
            if candidate is first:
                found, length = discover_stages(model, candidate.shape, batch, opts, device)
            else:  # one forward at its length: a refusal costs one pass
                found, length = discover_stages(
                    model, candidate.shape, batch, opts, device, shorter=False
                )
        except StageError as exc:
            first_error = first_error or exc
            search.refused(candidate, str(exc))
            continue
        if candidate is not first:
            refused = "; ".join(c.shown for c in search.tried[:-1]) or "none inferred"
            said = first.why if first else ()  # noted with the inferred shape already
            how = "".join(f"; {why}" for why in candidate.why if why not in said)
            notes.append(
                f"input shape {candidate.shown} found by trying candidates (refused: {refused})"
                f"{how}; pass --input-shape to be sure"
            )
        return found, length, candidate.shape, max(candidate.multiple, 1)
    reason = f"; first failure: {first_error}" if first_error else ""
    raise UsageError(
        f"cannot infer the input shape: the model refused every candidate "
        f"({'; '.join(c.shown for c in search.tried)}){search.exhausted}{reason}; pass "
        "--input-shape D1,...,T"
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

    Discovery needs the graph, not the length: unless ``shorter`` is False, an input of
    ``max(SHORT_FRAMES, T // 16)`` frames is tried first (one cheap pass) when that is
    shorter than ``shape``'s, the full length when the model refuses it (and, in
    :func:`~.check.check_model`, when the stages' lengths there snap loosely to their
    factors). A .pt2 (fixed ``batch``) keeps its exported shape.

    Raises:
        StageError: the model refused the full-length input.
    """

    def at_length(length: int) -> tuple[Discovery, int]:
        probe_shape = (*shape[:-1], length)
        return counted_discovery(model, probe_shape, batch, opts, device), length

    short = max(SHORT_FRAMES, shape[-1] // 16)
    found = None
    if shorter and batch is None and short < shape[-1]:
        try:
            found, length = at_length(short)
        except StageError:
            pass  # the full length below
    if found is None:
        found, length = at_length(shape[-1])
    if batch is None and (
        length <= SLOPE_FRAMES or any(s.kind == "shape-growth" for s in found.stages)
    ):
        try:
            found = refine_factors(found, length, *at_length(2 * length))
        except StageError:
            pass  # the factors one length gives
    return found, length


def random_note(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
    reference: torch.Tensor | None = None,
) -> str | None:
    """The note for a model that draws random numbers in ``forward``: the noise probe of the
    short ``shape`` run under two seeds gives two different outputs (``reference``: the output
    of the ``--seed`` pass, already run). None for a deterministic one."""
    x = noise_input(model, shape, batch, opts, device)
    if not draws_random(model, x, opts.method, device, opts.seed, reference):
        return None
    return (
        "the model draws random numbers in forward (its output differs between two runs of "
        f"the same input): its output is random; every pass is seeded with --seed {opts.seed}"
    )


def refine_factors(found: Discovery, length: int, longer: Discovery, twice: int) -> Discovery:
    """``found`` (input ``length``) with its :attr:`~.Discovery.slope` from a pass at input
    ``twice`` (``longer``), and each shape-growth stage's factor read off its growth between
    the two passes: ``S = Δout / Δin``, where constant
    padding and cropping cancel (one length cannot tell an unpadded x8 subpixel layer with
    kernel 9, ``8 (T − 8)``, from a x7 on 64 frames). Kept as it is where the slope is not an
    integer >= 2 within 1 %."""
    other = {s.name: s for s in longer.stages}
    stages = []
    for stage in found.stages:
        twin = other.get(stage.name)
        if stage.kind == "shape-growth" and twin is not None:
            grown = twin.in_shape[-1] - stage.in_shape[-1]
            slope = (twin.out_shape[-1] - stage.out_shape[-1]) / grown if grown > 0 else 0.0
            if round(slope) >= 2 and abs(slope / round(slope) - 1) <= 0.01:
                stage = replace(stage, factor=float(round(slope)))
        stages.append(stage)
    slope = (longer.output_shape[-1] - found.output_shape[-1]) / (twice - length)
    return replace(found, stages=stages, slope=slope)


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
    if found.slope:  # growth between two passes: padding and cropping cancel
        out_len, length = found.slope * length, length
    factor, clean = nominal_ratio(out_len, length, [s.factor for s in found.stages])
    if not clean:
        notes.append(
            f"output/input length ratio {out_len / length:.4g} taken as "
            f"{factor:.4g}: the input rate is sample rate / {factor:.4g}"
        )
    return factor
