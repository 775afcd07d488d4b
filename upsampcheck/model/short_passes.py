"""What a few passes on a short input tell before the probe pass is sized: whether the model
draws random numbers (:func:`~.discovery.random_note`), how much memory its own forward takes
(:mod:`.footprint`), and which stages its input never reaches (:mod:`.input_free`).

They run at :data:`~.discovery.SHORT_FRAMES` frames (kept a multiple of what the model asks)
where that is shorter than the discovery's input, so a large model (ParallelWaveGAN: a
WaveNet at the output rate) pays short forwards, not ones at the discovery length; at
the discovery's own length where the model refuses the short one. The first of them is
discovery's own pass where it ran at that shape: its output and its stage inputs' digests
stand in for the input-free test's first pass, and a model that drew nothing from torch's,
numpy's or Python's generators in it (:func:`~.seeding.generator_states`) needs no pass under
a second seed to be called deterministic. A deterministic model pays one short pass here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..subjects.discover import Discovery
from .discovery import SHORT_FRAMES, random_note
from .footprint import discovery_pass, forward_cost
from .input_free import input_free_stages

if TYPE_CHECKING:
    from .check import ModelOptions


def short_shape(tested: tuple[int, ...], multiple: int, fixed: bool) -> tuple[int, ...]:
    """``tested`` cut to :data:`SHORT_FRAMES` frames rounded up to ``multiple`` when that is
    shorter (never for a model whose length is fixed)."""
    short = -(-SHORT_FRAMES // max(multiple, 1)) * max(multiple, 1)
    return tested if fixed or short >= tested[-1] else (*tested[:-1], short)


def short_passes(
    model: nn.Module, found: Discovery, tested: tuple[int, ...], multiple: int, fixed: bool,
    batch: int | None, opts: ModelOptions, device: torch.device, notes: list[str],
    memory: bool = True,
) -> Discovery:  # fmt: skip
    """``found`` with the forward's memory (:mod:`.footprint`; not with ``memory`` False, for
    ``--list-stages``) and the input-free stages, and the notes for a random model and for
    input-free stages."""
    shape = short_shape(tested, multiple, fixed)
    cost = forward_cost(model, shape, batch, opts, device) if memory else None
    if memory and cost is None and shape != tested:  # the model refuses the short input
        shape = tested
        cost = forward_cost(model, shape, batch, opts, device)
    found = replace(found, forward_cost=cost)
    free, output = input_free_stages(model, found.stages, shape, batch, opts, device)
    known = discovery_pass(model, shape, batch, opts, device)
    drew = known is None or known.drew  # a pass that drew nothing from any seeded generator
    if drew and (random := random_note(model, shape, batch, opts, device, output)) is not None:
        notes.append(random)
    if free:
        found = replace(found, input_free=free)
        more = ", …" if len(free) > 3 else ""
        notes.append(
            f"{len(free)} stage(s) take an input that does not depend on the model's input "
            f"(its own noise or a constant): {', '.join(free[:3])}{more}; they do not set "
            "the probe's length and are driven alone"
        )
    return found
