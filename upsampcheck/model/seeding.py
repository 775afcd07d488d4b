"""Forward passes that reproduce: a model that draws random numbers in ``forward`` (WaveGlow's
``infer``, ParallelWaveGAN's noise ``z``, a noise injection) gives a different output for the
same input on every run. Every forward pass the tool makes runs under :func:`seeded` (torch's
generators seeded with ``--seed``, the caller's generator state left as it was), and
:func:`draws_random` tells the user their model's output is random."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..subjects.discover import tap


def _devices(device: torch.device | None) -> list[int]:
    if device is not None and device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Run the block with torch's generators seeded with ``seed`` (CPU and ``device``'s),
    restoring their state afterwards: the same input gives the same output on every pass,
    and a caller's own random stream is not disturbed."""
    with torch.random.fork_rng(devices=_devices(device)):
        torch.manual_seed(seed)
        yield


def generator_states(device: torch.device | None = None) -> tuple:
    """The states of every generator a model's ``forward`` commonly draws from: torch's CPU
    generator and ``device``'s, numpy's global one and Python's ``random``. A pass that
    leaves them all as they were drew no random numbers from them."""
    import random

    import numpy as np

    torch_states = [torch.get_rng_state()]
    torch_states += [torch.cuda.get_rng_state(index) for index in _devices(device)]
    kind, keys, pos, *rest = np.random.get_state()
    return (
        tuple(bytes(t.numpy()) for t in torch_states),
        (kind, keys.tobytes(), pos, *rest),
        random.getstate(),
    )


def draws_random(
    model: nn.Module, x: torch.Tensor, method: str, device: torch.device | None = None,
    seed: int = 0, reference: torch.Tensor | None = None,
) -> bool:  # fmt: skip
    """True when two passes of the same input ``x``, seeded with ``seed`` and ``seed + 1``,
    give different outputs (beyond float round-off): the model draws random numbers in
    ``forward``. ``reference``: the output of the ``seed`` pass, already run (one pass is
    saved). False also when the model refuses ``x`` (discovery has run it, so it should not)."""
    outputs = [] if reference is None else [reference.detach().to(torch.float64)]
    for run_seed in (seed, seed + 1)[len(outputs) :]:
        try:
            with seeded(run_seed, device):
                out, _ = tap(model, x, [], method, {})
        except Exception:
            return False
        outputs.append(out.detach().to(torch.float64))
    a, b = outputs
    if a.shape != b.shape:
        return True
    if a.numel() == 0:
        return False
    scale = float(torch.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).abs().max()) or 1.0
    diff = torch.nan_to_num((a - b).abs(), nan=0.0, posinf=0.0, neginf=0.0)
    same_nans = torch.equal(torch.isnan(a), torch.isnan(b))
    return not same_nans or float(diff.max()) > 1e-5 * scale
