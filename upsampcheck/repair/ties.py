"""The minimum-norm kernel correction that ties an upsampler's phase sums (docs/method.md,
"Repair: tying the phase sums").

A transposed convolution with stride ``s`` (and dilation ``d``) sends tap ``k`` of its kernel
to output phase ``r(k) = k·d mod s``. For one (input, output) channel pair the phase sums are
``P_r = Σ_{r(k)=r} w[k]`` and a constant input ``c`` gives lines of complex amplitude
``c·W_m/s`` at ``m·fs_in`` with ``W_m = Σ_r P_r e^{-2πi m r/s}``: the stage makes lines from
any DC at its input exactly when the ``P_r`` differ.

The correction: ``A`` is the ``s × K`` phase-sum matrix (``A[r, k] = 1`` when ``r(k) = r``), so
``P = A w``. Its rows have disjoint supports, so ``A Aᵀ = diag(n_r)`` with ``n_r`` the taps of
phase ``r``, and the minimum-norm solution of ``A Δ = T − P`` with ``T = mean_r P_r`` is
``Δ = Aᵀ (A Aᵀ)⁻¹ (T − P)``: within phase ``r`` every tap moves by ``(T − P_r) / n_r``. Then
every ``P'_r = T`` (all ``W_m = 0`` for ``0 < m < s``) and ``Σ_r P'_r = Σ_r P_r`` (the stage's
DC gain is kept). It is the smallest change (in the Euclidean norm of the taps) that does it.
A phase with no tap (``n_r = 0``: ``K·d`` covering fewer than ``s`` phases) has ``P_r = 0``
for good, so equal sums would need every ``P_r = 0``, the DC gain gone: refused.

Tying each pair is sufficient for every input: the lines of any input mix are sums over pairs
of ``c_in · W_m(in, out)``, all zero (the report's own polyphase sums add the pairs over the
input channels, a weaker condition that holds only for inputs driven alike).

A subpixel stage (``Conv1d(C_in, C·s, K)`` then the periodic shuffle, output channel ``c``'s
phase ``r`` from conv channel ``c·s + r``) has per-phase sub-kernels: their DC gains
``P_r = Σ_k w[c·s+r, i, k]`` and biases ``b[c·s+r]`` play the same part. Every phase's ``K``
taps move by ``(T − P_r)/K`` and the biases are tied to their mean.

Everything is computed in float64 and cast back to the weight's dtype; a pair whose sums are
already exactly equal gets ``Δ = 0``, so a tied kernel comes back bit for bit.
"""

from __future__ import annotations

import torch

__all__ = [
    "Untieable",
    "phase_of_taps",
    "phase_offsets",
    "phase_sums",
    "tie_subpixel",
    "tie_transposed",
]


class Untieable(ValueError):
    """The phase sums of this kernel cannot be made equal without zeroing its DC gain."""


def phase_of_taps(length: int, stride: int, dilation: int = 1) -> torch.Tensor:
    """``r(k) = k·d mod s`` for each tap ``k`` of a kernel of ``length`` taps."""
    return (torch.arange(length) * dilation) % stride


def phase_matrix(
    length: int, stride: int, dilation: int = 1, device: torch.device | str | None = None
) -> torch.Tensor:
    """``A``: the ``(s, K)`` float64 matrix with ``A[r, k] = 1`` where tap ``k`` is in phase
    ``r``, so that ``P = A w``."""
    phases = phase_of_taps(length, stride, dilation)
    return (phases[None, :] == torch.arange(stride)[:, None]).double().to(device)


def phase_sums(weight: torch.Tensor, stride: int, dilation: int = 1) -> torch.Tensor:
    """Per-pair phase sums ``(..., s)`` of a transposed-conv kernel ``(..., K)``, float64."""
    a = phase_matrix(weight.shape[-1], stride, dilation, weight.device)
    return weight.double() @ a.T


def phase_offsets(sums: torch.Tensor) -> torch.Tensor:
    """``W_m = Σ_r P_r e^{-2πi m r/s}`` for ``m = 0 .. s-1`` from sums ``(..., s)``:
    ``W_0`` is the DC gain, ``W_m`` (``m > 0``) the line a unit DC input makes, times ``s``."""
    return torch.fft.fft(sums.double(), dim=-1)


def _tied_sums(sums: torch.Tensor) -> torch.Tensor:
    """``T − P`` per pair, exactly zero where a pair's sums are already all equal."""
    target = sums.mean(-1, keepdim=True)
    equal = (sums == sums[..., :1]).all(-1, keepdim=True)
    return torch.where(equal, torch.zeros_like(sums), target - sums)


def tie_transposed(weight: torch.Tensor, stride: int, dilation: int = 1) -> torch.Tensor:
    """The tied kernel ``w + Δ`` of a transposed convolution, ``weight`` ``(C_in, C_out/g, K)``
    (any leading shape: one pair per row), in ``weight``'s dtype.

    Raises :class:`Untieable` when a phase has no tap."""
    length = weight.shape[-1]
    a = phase_matrix(length, stride, dilation, weight.device)
    counts = a.sum(1)
    if (counts == 0).any():
        empty = [r for r in range(stride) if counts[r] == 0]
        raise Untieable(
            f"phase{'s' * (len(empty) > 1)} {', '.join(map(str, empty))} of stride {stride} "
            f"hold{'s' * (len(empty) == 1)} no tap (kernel length {length}, dilation "
            f"{dilation}): its sum is 0 for good, and equal sums would zero the stage's DC gain"
        )
    w = weight.detach().double()
    gap = _tied_sums(w @ a.T)
    delta = (gap / counts) @ a  # Aᵀ (A Aᵀ)⁻¹ (T − P), A Aᵀ = diag(n_r)
    return (w + delta).to(weight.dtype)


def subpixel_sums(weight: torch.Tensor, stride: int) -> torch.Tensor:
    """Phase sums ``(C, C_in, s)`` of a subpixel conv ``weight`` ``(C·s, C_in, K)``: entry
    ``[c, i, r]`` is the DC gain of the sub-kernel from input ``i`` to output ``c``'s phase
    ``r`` (conv channel ``c·s + r``)."""
    grouped = weight.double().sum(-1).view(-1, stride, weight.shape[1])
    return grouped.permute(0, 2, 1)


def tie_subpixel(
    weight: torch.Tensor, bias: torch.Tensor | None, stride: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The tied ``(weight, bias)`` of a subpixel conv (``weight`` ``(C·s, C_in, K)``): every
    sub-kernel's DC gain moved to the mean over phases by ``(T − P_r)/K`` on each tap, and
    the biases of output channel ``c`` tied to their mean over phases."""
    length = weight.shape[-1]
    gap = _tied_sums(subpixel_sums(weight, stride))  # (C, C_in, s)
    delta = gap.permute(0, 2, 1).reshape(weight.shape[0], weight.shape[1], 1) / length
    tied = (weight.detach().double() + delta).to(weight.dtype)
    if bias is None:
        return tied, None
    b = bias.detach().double().view(-1, stride)
    b = (b + _tied_sums(b)).reshape(-1).to(bias.dtype)
    return tied, b
