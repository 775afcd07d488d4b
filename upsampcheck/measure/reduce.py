"""A stage's probe signals reduced to what its measurement reads, in blocks on their device:
each probe row's mean period per channel and three mean squares (:class:`Periods`), the
figure-only probes' Welch spectra on the display bins (:func:`reduce_stage`). A model stage is
reduced inside the hook that sees it, so none of its samples outlive the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .analysis import StagePlan

DISPLAY_BINS = 2048
"""Spectra for the figures are summed into this many bins across 0 .. fs_out/2."""

SHOWN_CHANNELS = 16
"""The sweep's and tone's spectra (figures only) average the first this many channels."""

BLOCK_VALUES = 2**18
"""Channels are reduced in blocks of at most this many float64 values (32 MiB)."""


def channel_blocks(t: torch.Tensor) -> list[torch.Tensor]:
    """``t (R, C, T)`` split along channels into blocks of at most :data:`BLOCK_VALUES`."""
    step = max(1, BLOCK_VALUES // max(1, t.shape[0] * t.shape[-1]))
    return [t[:, c : c + step] for c in range(0, t.shape[1], step)]


def power_spectrum(y: torch.Tensor, n_fft: int) -> np.ndarray:
    """Hann-window Welch power spectrum of ``y (..., T)`` averaged over all leading dims, for the
    figures of the non-periodic probes (sweep, tone); bins sum to the mean power per sample.
    Rows are transformed in blocks, so a wide signal never exists in float64 at once."""
    rows = y.reshape(-1, y.shape[-1])
    n_fft = min(n_fft, rows.shape[-1])
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64, device=y.device)
    hop = max(1, n_fft // 2)
    frames = (rows.shape[-1] - n_fft) // hop + 1
    step = max(1, BLOCK_VALUES // max(1, frames * n_fft))
    total = torch.zeros(n_fft // 2 + 1, dtype=torch.float64, device=y.device)
    for r in range(0, rows.shape[0], step):
        block = rows[r : r + step].double().unfold(-1, n_fft, hop)
        bins = torch.view_as_real(torch.fft.rfft(block * window, dim=-1))
        total += bins.square().sum(dim=(0, 1)).sum(-1)  # |X|², without abs's square root
    spec = total / (rows.shape[0] * frames) / (n_fft * window.pow(2).sum())
    spec[1 : (n_fft + 1) // 2] *= 2
    return spec.cpu().numpy()


def welch_on(signal: torch.Tensor, width: int) -> np.ndarray:
    """A Welch spectrum of ``signal (C, T)`` on ``width + 1`` display bins (interpolated when
    the signal is too short for frames of ``2 · width``)."""
    n_fft = min(2 * width, signal.shape[-1] // 2 * 2)
    spec = power_spectrum(signal, n_fft)
    if len(spec) == width + 1:
        return spec
    scale = (len(spec) - 1) / width
    return np.interp(np.linspace(0, 1, width + 1), np.linspace(0, 1, len(spec)), spec) / scale


@dataclass
class Periods:
    """Probe rows ``(R, C, P·N)`` reduced to what the measurement reads: their mean period and
    three mean squares, per row. Everything else about the window is gone.

    Attributes:
        fold: ``(R, C, N)`` float64, the periodic part (mean over the ``P`` periods).
        residue: ``(R,)`` mean square of the window minus its periodic part (the non-periodic
            rest: noise, transients, distortion off the period).
        power: ``(R,)`` mean square of the window.
        change: ``(R,)`` mean square difference of the last two periods.
        first: ``(R, P·N)`` channel 0 of the window, as it was (spectrograms and excerpts).
        span: ``P·N``, the window's length.
    """

    fold: torch.Tensor
    residue: torch.Tensor
    power: torch.Tensor
    change: torch.Tensor
    first: torch.Tensor
    span: int


def reduce_periods(y: torch.Tensor, period: int) -> Periods:
    """:class:`Periods` of ``y (R, C, P·period)``, channels in blocks (:func:`channel_blocks`)
    on ``y``'s device, each block in float64 only while it is reduced.

    With ``f`` the fold, the residue is ``mean((y - f)²)`` over the window; since ``y - f``
    sums to zero on every phase of the period, the residue at any divisor ``n`` of the period
    is that plus ``mean((f - fold(f, n))²)`` (:func:`grid_residue`).

    One float64 temporary per block, ``d``: a copy of the block in float64, its fold ``f``
    taken, then ``d -= f`` in place; the residue and the change are sums of squares of ``d``
    (dot products, no squared copy), and the power is ``Σd² + P·Σf²`` (exact, since ``d``
    sums to zero over the ``P`` periods: no cancellation, both terms are positive)."""
    if y.shape[-1] % period:
        raise ValueError(f"{y.shape[-1]} samples are not whole periods of {period}")
    folds, rows = [], y.shape[0]
    residue = torch.zeros(rows, dtype=torch.float64, device=y.device)
    power, change = torch.zeros_like(residue), torch.zeros_like(residue)
    for block in channel_blocks(y):
        d = block.to(torch.float64, copy=True).reshape(rows, block.shape[1], -1, period)
        count = d.shape[-2]
        f = d.mean(-2)
        folds.append(f)
        d -= f.unsqueeze(-2)  # in place: a mixed-dtype subtraction is ten times slower
        squares = row_squares(d)
        residue += squares
        power += squares + count * row_squares(f)
        change += row_squares(d[..., -1, :] - d[..., -2, :])
    values = y.shape[1] * y.shape[-1]
    return Periods(
        fold=torch.cat(folds, dim=1),
        residue=residue / values,
        power=power / values,
        change=change / (y.shape[1] * period),
        first=y[:, 0].detach().clone(),
        span=y.shape[-1],
    )


def row_squares(t: torch.Tensor) -> torch.Tensor:
    """``(t[r]²).sum()`` for each row ``r`` of ``t (R, ...)``, as a batched dot product (one
    read of ``t``, no squared copy)."""
    flat = t.reshape(t.shape[0], 1, -1)
    return torch.bmm(flat, flat.transpose(1, 2)).reshape(t.shape[0])


def grid_residue(fold: torch.Tensor, residue: float, period: int) -> tuple[torch.Tensor, float]:
    """A row's ``fold (C, N)`` folded again to ``period`` (a divisor of ``N``) and its residue
    there: ``residue + mean((fold - refold)²)`` (:func:`reduce_periods`)."""
    if fold.shape[-1] % period:
        raise ValueError(f"a {fold.shape[-1]}-sample period holds no whole {period}-sample one")
    one = fold.reshape(fold.shape[0], -1, period).mean(-2)
    extra = (fold.reshape(fold.shape[0], -1, period) - one.unsqueeze(-2)).pow(2).mean()
    return one, residue + float(extra)


@dataclass
class StageTaps:
    """One stage's probe signals as :func:`measure_reduced` needs them (see :func:`reduce_stage`).

    Attributes:
        x, y: the periodic rows :data:`PERIODIC` at the stage input and output, reduced.
        others: per non-periodic probe (sweep, tone), its output's Welch spectrum on the
            display bins (over the first :data:`SHOWN_CHANNELS` channels) and channel 0
            ``(T,)`` (the figures only).
    """

    x: Periods
    y: Periods
    others: dict[str, tuple[np.ndarray, torch.Tensor]] = field(default_factory=dict)


def reduce_stage(
    x: torch.Tensor, y: torch.Tensor, plan: StagePlan, others: dict[str, torch.Tensor] | None = None
) -> StageTaps:
    """``x (3, C_in, P·N_in)`` and ``y (3, C_out, P·N_out)``, whole periods of the rows
    :data:`PERIODIC`, and the ``others`` outputs ``(C_out, T)``, reduced to :class:`StageTaps`:
    a few mean periods and numbers instead of every sample."""
    width = min(DISPLAY_BINS, plan.period_out // 2)
    shown = {
        name: (welch_on(s[:SHOWN_CHANNELS], width), s[0].detach().clone())
        for name, s in (others or {}).items()
    }
    return StageTaps(reduce_periods(x, plan.period_in), reduce_periods(y, plan.period_out), shown)
