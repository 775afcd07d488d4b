"""Stages the model's input never reaches: a path the model drives with its own noise or a
constant (StyleMelGAN's noise upsampler grows ``z`` by 11·2·2·2 beside the mel path; a
ParallelWaveGAN wrapper's ``z = 0``).

Such a stage's input is the same whatever the model is given, so the probe pass cannot measure
it, and its rate must not set the probe's period: a noise path at 1/88 of the mel rate would ask
for 88 times the probe length (StyleMelGAN: 22,528 mel frames and over 20 GiB). Found by running
the same short input twice, the second shifted in time by a few samples, under the same seed: a
stage whose input is bit-identical in both is input-free. It is driven alone instead
(:func:`~.stages.unreached_finding`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..subjects.digest import digest, same
from ..subjects.discover import Stage, tap
from .footprint import discovery_pass, noise_input
from .seeding import seeded

if TYPE_CHECKING:
    from .check import ModelOptions

SHIFT = 7
"""Samples the second input is rotated by: any stage the input reaches sees it moved."""


def input_free_stages(
    model: nn.Module,
    stages: list[Stage],
    shape: tuple[int, ...],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
) -> tuple[tuple[str, ...], torch.Tensor | None]:
    """The names of ``stages`` whose input is identical for the noise probe of ``shape`` and
    the same probe rotated by :data:`SHIFT` samples (both passes seeded with ``--seed``), and
    the model's output on the first pass (the random test's first run); ``()`` when a pass
    fails. The first pass is discovery's own where it ran at ``shape``
    (:func:`~.footprint.discovery_pass`: the same input under the same seed), so only the
    rotated one runs; inputs are compared by :func:`~.subjects.digest.digest`."""
    if not stages or shape[-1] <= SHIFT:
        return (), None
    first = noise_input(model, shape, batch, opts, device)
    known = discovery_pass(model, shape, batch, opts, device)
    if known is not None and all(known.digests.get(s.name) is not None for s in stages):
        digests, output = [known.digests], known.output
        inputs = [first.roll(SHIFT, dims=-1)]
    else:
        digests, output = [], None
        inputs = [first, first.roll(SHIFT, dims=-1)]
    for x in inputs:
        try:
            with seeded(opts.seed, device):
                out, taps = tap(model, x, stages, opts.method)
        except Exception:  # noqa: BLE001 (a model that refuses the shift: nothing is known)
            return (), output
        output = out if output is None else output
        digests.append({name: digest(pair[0].cpu()) for name, pair in taps.items()})
        del taps
    a, b = digests
    return tuple(s.name for s in stages if same(a.get(s.name), b.get(s.name))), output
