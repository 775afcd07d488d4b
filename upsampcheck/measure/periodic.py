"""Periodic signals: whole-period windows, folding, one-sided bin powers and which bins carry what.

A stage fed the multitone of period ``M`` (at ``fs0``) runs, in steady state, on an input of
period ``N_in = M · fs_in / fs0`` samples and gives an output of period ``N_out = S · N_in``.
Over whole periods a plain DFT needs no window and leaks nothing: bin ``q`` of an ``N``-point
DFT of one period is the frequency ``q · fs0 / M`` at every stage. For a linear periodically
time-varying stage (zero insertion by ``S`` then a filter ``H``), output bin ``q`` comes from
input bin ``q mod N_in`` alone: ``Y[q] = H(q) · X[q mod N_in]`` (Pintelon & Schoukens,
*System Identification: A Frequency Domain Approach*, periodic excitation).

Bins fall in three kinds: *driven* (odd ``q`` whose source excited bin, ``q mod M`` folded into
``[0, M/2]``, is excited: the multitone and its images), *grid* (multiples of the lowest stage
input rate, in bins ``g``: artifacts only) and the remaining even bins (distortion only).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .multitone import REFERENCE_BAND, group_of, guard_for


def fold(y: torch.Tensor, period: int) -> torch.Tensor:
    """``(..., P·period) -> (..., period)``: the mean over whole periods (the periodic part)."""
    if y.shape[-1] % period:
        raise ValueError(f"{y.shape[-1]} samples are not whole periods of {period}")
    return y.reshape(*y.shape[:-1], -1, period).mean(-2)


def periodicity_error(y: torch.Tensor, period: int) -> float:
    """Mean square difference of the last two periods of ``y (..., P·period)``, ``P ≥ 2``."""
    last, before = y[..., -period:].double(), y[..., -2 * period : -period].double()
    return float((last - before).pow(2).mean())


def bin_power(spectrum: torch.Tensor, n: int) -> torch.Tensor:
    """One-sided power (RMS²) of each bin of ``rfft`` output ``spectrum (..., n//2 + 1)`` of
    ``n`` real samples: ``2|Y_q|²/n²``, with DC and the Nyquist bin (even ``n``) not doubled."""
    power = (spectrum.real.square() + spectrum.imag.square()) * (2.0 / n**2)
    power[..., 0] /= 2
    if n % 2 == 0:
        power[..., -1] /= 2
    return power


def source_bins(q: np.ndarray, mt_period: int) -> np.ndarray:
    """The excited bin of the first period that bin ``q`` is an image of: ``q mod M`` folded."""
    k = np.asarray(q) % mt_period
    return np.minimum(k, mt_period - k)


def driven_bins(
    n: int, mt_period: int, groups: int, below: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """The driven bins ``0 < q < n/2`` of an ``n``-sample period and each one's group.

    With ``n ≥ M`` (a stage at or above ``fs0``) bin ``q`` is driven when its source bin is
    excited, and belongs to that bin's group. Below ``fs0`` (a model stage after downsampling)
    many excited bins fold onto each odd bin: every odd bin is driven, grouped by its residue.
    ``below``: only the bins ``q ≤ below · n`` (a band's top, so a long period lists a few).
    """
    q = np.arange(1, min((n + 1) // 2, math.floor(below * n) + 1), 2)
    if n < mt_period:
        return q, group_of(q, groups)
    k = source_bins(q, mt_period)
    guard = guard_for(mt_period)
    keep = (k > guard) & (k < mt_period // 2 - guard)
    return q[keep], group_of(k[keep], groups)


def reference_groups(n: int, mt_period: int, groups: int) -> int:
    """How many of the ``groups`` bin groups have a driven bin of an ``n``-sample period in the
    1–5 % reference band (``REFERENCE_BAND``, fractions of the Nyquist ``n / 2``)."""
    q, group = driven_bins(n, mt_period, groups, REFERENCE_BAND[1] / 2)  # only the band's
    fraction = q / (n / 2)
    inside = (fraction >= REFERENCE_BAND[0]) & (fraction <= REFERENCE_BAND[1])
    return len(set(group[inside].tolist()))


def lowest_fraction(n: int, mt_period: int, groups: int) -> float:
    """The lowest driven bin of an ``n``-sample period, as a fraction of its band: where the
    response reference sits when no driven bin lies in 1–5 %."""
    q, _ = driven_bins(n, mt_period, groups)
    return float(q[0] / (n / 2)) if len(q) else 1.0


def display_power(power: np.ndarray, n: int, width: int) -> np.ndarray:
    """Per-bin powers of an ``n``-point period summed into ``width + 1`` display bins spanning
    0 .. Nyquist (a line keeps its power; a dense spectrum reads as power per display bin)."""
    if len(power) <= width + 1:
        return power
    index = np.rint(np.arange(len(power)) * width / (len(power) - 1)).astype(int)
    out = np.zeros(width + 1)
    np.add.at(out, index, power)
    return out
