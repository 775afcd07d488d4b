"""An exact fingerprint of a tensor's values, to tell two passes' signals apart without keeping
them: the short pass discovery runs is also the first pass of the input-free test
(:mod:`~upsampcheck.model.input_free`), and it keeps each stage input's digest, not the input.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

Digest = bytes | None
"""``None``: no digest (off the CPU, a dtype numpy cannot read, or a NaN): equal to nothing."""


def digest(t: torch.Tensor) -> Digest:
    """BLAKE2b of ``t``'s dtype, shape and values (C order), or None where they cannot be read
    without a torch op (so a dispatch mode counting the pass's tensors sees nothing) or hold a
    NaN (``torch.equal`` calls NaN unequal to itself; a digest would call it equal). Two
    digests are equal exactly when the values are, up to the sign of zeros."""
    if t.device.type != "cpu" or t.is_conj() or t.is_neg() or t.layout != torch.strided:
        return None
    try:
        values = np.ascontiguousarray(t.detach().numpy())
    except (TypeError, RuntimeError):  # bfloat16 and other dtypes numpy has no type for
        return None
    if values.dtype.kind in "fc" and np.isnan(values).any():
        return None
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(memoryview(values).cast("B"))
    return h.digest()


def same(a: Digest, b: Digest) -> bool:
    """True when both are digests and equal."""
    return a is not None and a == b


def digest_input(x: torch.Tensor, y: torch.Tensor) -> Digest:
    """A stage's input digested (a :class:`~.stages.StageLog` reducer of ``(input, output)``)."""
    return digest(x)
