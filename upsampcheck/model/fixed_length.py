"""Models whose output length is fixed: a trace or export that baked in its example's
lengths, or a resize to a fixed size. Their rates cannot be read off a short discovery (16000
samples out of 64 in is not a x250 model), so they are found (:func:`constant_output`),
analysed at the one input length where output = factor x input holds (:func:`traced_length`,
:func:`at_traced_length`), or refused in one line; a length fixed at the probe pass is a
warning (:func:`fixed_length_findings`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..bounds import PROBE_SAMPLES
from ..errors import StageError, UsageError
from ..report.findings import Finding
from ..subjects.discover import Discovery
from ..subjects.loading import LoadedModel
from .discovery import SCALING_TOLERANCE, discover_stages

if TYPE_CHECKING:
    from .check import ModelOptions


def constant_output(found: Discovery, length: int) -> int | None:
    """The output length when it stayed the same (within a sample) between discovery's two
    passes (input ``length`` and ``2 length``, :func:`refine_factors`): a trace that baked in its
    example's lengths, or an op with a fixed output size. None when it followed the input or
    discovery ran once."""
    if found.slope is None or not found.stages or abs(found.slope) * length > 1:
        return None
    return found.output_shape[-1]


def follows_factors(found: Discovery, frames: int, out: int) -> bool:
    """Whether the discovery at input ``frames`` puts out ``out`` samples (within a sample) and
    that is the product of the whole factors of the stages found there times the input (within
    1 %, padding and cropping): the op that fixes the output length is a no-op at this length."""
    whole = [s.factor for s in found.stages if float(s.factor).is_integer()]
    grown = math.prod(whole) if whole else 0  # a fractional factor: the resize that fixes it
    return abs(found.output_shape[-1] - out) <= 1 and abs(grown * frames / out - 1) <= 0.01


def traced_length(
    model: nn.Module, found: Discovery, length: int, shape: tuple[int, ...],
    opts: ModelOptions, device: torch.device, only: bool = False,
) -> tuple[int, Discovery] | None:  # fmt: skip
    """The input length at which a model whose output length is constant (``out`` samples)
    can be read: with ``only``, ``shape``'s own length if :func:`follows_factors` holds there;
    else the longest ``T = out / f``, ``f`` the product of a run of consecutive whole-factor
    stages found at ``length``, where it holds (the length a trace was made with). Returns it
    with the discovery at that length; None when none holds."""
    out = found.output_shape[-1]
    factors = [s.factor for s in found.stages if float(s.factor).is_integer()]
    n = len(factors)
    runs = {math.prod(factors[i:j]) for i in range(n) for j in range(i + 1, n + 1)}
    candidates = (
        [shape[-1]]
        if only
        else sorted(
            {round(out / f) for f in runs if f >= 2 and abs(out / f - round(out / f)) < 1e-6},
            reverse=True,
        )
    )
    tried = {length}
    for frames in candidates:
        if frames in tried or not 1 <= frames <= PROBE_SAMPLES[1]:
            continue
        tried.add(frames)
        try:
            at, _ = discover_stages(model, (*shape[:-1], frames), None, opts, device, False)
        except StageError:
            continue
        if follows_factors(at, frames, out):
            return frames, at
    return None


def at_traced_length(
    loaded: LoadedModel, model: nn.Module, found: Discovery, length: int,
    shape: tuple[int, ...], inferred: bool, opts: ModelOptions, device: torch.device,
    out: int, notes: list[str],
) -> tuple[Discovery, int, tuple[int, ...]]:  # fmt: skip
    """A model whose output stays ``out`` samples whatever its input (a trace that baked in
    its example's lengths, a resize to a fixed size): rates read at discovery's short length
    are wrong (16000 samples out of 64 in is not a x250 model), so it is discovered and probed
    at exactly one input length (:func:`traced_length`): ``--input-shape``'s when
    output = factor x input holds there, else the length it was traced at when the shape was
    inferred. Else a one-line refusal naming the length it needs, or saying none was found."""
    what = "TorchScript archive" if loaded.source == "torchscript" else "model"
    if not inferred:
        asked = traced_length(model, found, length, shape, opts, device, only=True)
        if asked is not None or shape[-1] == length and follows_factors(found, length, out):
            frames, at = asked or (length, found)
            notes.append(
                f"the {what} fixes its output at {out} samples whatever the input length: "
                f"analysed at the {frames} input samples asked for, where output = x"
                f"{out / frames:g} input"
            )
            return at, frames, shape
    traced = traced_length(model, found, length, shape, opts, device)
    if traced is None:
        raise UsageError(
            f"this {what} fixes its output at {out} samples whatever the input length "
            f"({length} and {2 * length} samples in), and no input length gives output = "
            "factor x input: its rates cannot be read; trace or export it with a dynamic time "
            "axis, or check the eager model"
        )
    frames, at = traced
    wanted = ",".join(map(str, (*shape[:-1], frames)))
    if not inferred:
        raise UsageError(
            f"this {what} fixes its output at {out} samples (traced at {frames} input "
            f"samples): run with --input-shape {wanted}"
        )
    notes.append(
        f"the {what} fixes its output at {out} samples whatever the input length: analysed at "
        f"{frames} input samples, the length it was traced at (output = x"
        f"{out / frames:g} input there)"
    )
    return at, frames, (*shape[:-1], frames)


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
