"""The periodic random-phase multitone (Pintelon & Schoukens' periodic multisine).

One period has ``M`` samples at the first rate ``fs0`` (the first stage's input, or the model's
input); its DFT bins are ``k · fs0 / M``. The probe is

    x_c[n] = Σ_{k ∈ E_c} A cos(2π k n / M + φ_k),   A = σ · sqrt(2 / |E|)

on input channel ``c``, with seeded uniform phases ``φ_k``; every channel has RMS ``σ`` and the
sample values are close to Gaussian. The excited set ``E`` is the odd bins ``3 ≤ k ≤ M/2 − 3``
(guards of two bins at DC and at fs0/2). Every frequency any later stage sees is a bin ``q`` of
the same spacing ``fs0 / M``; an excited bin's images ``j M ± k`` are odd, so they never land on
a grid bin (a multiple of ``M``, or of the period of any stage input rate, all even), and odd-
order distortion of odd bins stays odd. Energy on a grid bin is therefore never the multitone's
linear response.

Multichannel inputs: the odd bins are dealt to ``G = min(C, MAX_GROUPS)`` interleaved groups
(bin ``k`` belongs to group ``((k − 1) / 2) mod G``), and channel ``c`` is driven on group
``c mod G`` only. For ``C ≤ MAX_GROUPS`` each channel owns its bins, so every transfer function
``H_oc = Y_o / X_c`` is measured alone, with no cross terms. Wider inputs share groups between
channels (independent phases per channel): their per-bin responses are then a random-phase
mixture, exact only in expectation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

GUARD = 2
"""Bins kept free next to DC and next to fs0/2 (and so next to every grid bin)."""
MAX_GROUPS = 8
"""At most this many interleaved bin groups (input channels measured separately)."""
MIN_PERIOD = 256
"""The shortest period: 64 or more excited bins across the first stage's band."""
REFERENCE_BAND = (0.01, 0.05)
"""The response is relative to the mean gain over this part of the band (fractions of Nyquist)."""


def groups_for(channels: int) -> int:
    """How many interleaved groups ``channels`` input channels get."""
    return max(1, min(int(channels), MAX_GROUPS))


SHORT_PERIOD = 32
"""Periods shorter than this (a fixed-length archive's 8 to 30 frames) keep no guard bins:
every odd bin ``1 ≤ k < period/2`` is excited, so even 8 frames give two bins."""


def guard_for(period: int) -> int:
    """Guard bins at each end of the band: :data:`GUARD`, none below :data:`SHORT_PERIOD`.
    (Guards are a margin, not a need: an odd bin's images are odd, never on the grid.)"""
    return GUARD if period >= SHORT_PERIOD else 0


def excited_bins(period: int) -> np.ndarray:
    """The odd bins ``g + 1 ≤ k < period/2 − g`` (``g`` guard bins at each end of the band:
    ``3 ≤ k ≤ period/2 − 3``, or every odd bin for a short period: :func:`guard_for`)."""
    guard = guard_for(period)
    return np.arange(guard + 1, period // 2 - guard, 2)


def group_of(k: np.ndarray, groups: int) -> np.ndarray:
    """The group an odd bin belongs to: ``((k − 1) / 2) mod G``."""
    return ((np.asarray(k) - 1) // 2) % groups


def covers_reference(period: int, groups: int) -> bool:
    """True when every group has an excited bin in the 1–5 % reference band of the first stage."""
    k = excited_bins(period)
    lo, hi = (f * period / 2 for f in REFERENCE_BAND)
    inside = k[(k >= lo) & (k <= hi)]
    return len(set(group_of(inside, groups).tolist())) == groups


def holds_groups(period: int, groups: int) -> bool:
    """True when every one of ``groups`` bin groups has an excited bin in ``period``: as
    consecutive odd bins run through the groups in turn, when it has ``groups`` excited bins
    (counted, not listed: a model's period can run to millions of samples)."""
    if period < 8 or period % 2:
        return False
    guard = guard_for(period)
    return len(range(guard + 1, period // 2 - guard, 2)) >= groups


def min_period(groups: int, unit: int = 1) -> int:
    """The shortest period ``unit · 2^j ≥ MIN_PERIOD`` whose reference band holds a bin of
    every group (256 for up to 2 groups, 512 for 4, 1024 for 8)."""
    period = unit
    while period < MIN_PERIOD or not covers_reference(period, groups):
        period *= 2
    return period


@dataclass(frozen=True)
class Multitone:
    """One period's design: ``period`` samples, ``groups`` interleaved bin groups over
    ``channels`` input channels, per-channel phases and amplitudes ``A_c`` for RMS ``level``."""

    period: int
    channels: int
    groups: int
    level: float
    amplitudes: tuple[float, ...]
    bins: tuple[np.ndarray, ...]
    """Excited bins of each channel (a channel's group)."""
    phases: tuple[np.ndarray, ...]

    def signal(self, n_samples: int) -> torch.Tensor:
        """``(channels, n_samples)`` float64: the periodic multitone from sample 0."""
        out = np.empty((self.channels, self.period))
        for c in range(self.channels):
            spectrum = np.zeros(self.period // 2 + 1, dtype=complex)
            half = self.amplitudes[c] * self.period / 2
            spectrum[self.bins[c]] = half * np.exp(1j * self.phases[c])
            out[c] = np.fft.irfft(spectrum, self.period)
        reps = math.ceil(n_samples / self.period)
        return torch.from_numpy(np.tile(out, reps)[:, :n_samples].copy())


def design_multitone(
    period: int, channels: int, seed: int, level: float, groups: int | None = None
) -> Multitone:
    """The multitone of ``period`` samples for ``channels`` input channels at RMS ``level``,
    with ``groups`` interleaved bin groups (default :func:`groups_for`).

    Each channel's RMS is exactly ``level``: ``A_c = level · sqrt(2 / |E_c|)``.
    """
    if period % 2 or period < 8:
        raise ValueError(f"multitone period must be even and >= 8 (got {period})")
    groups = groups or groups_for(channels)
    every = excited_bins(period)
    owned = [every[group_of(every, groups) == g] for g in range(groups)]
    if any(len(b) == 0 for b in owned):
        raise ValueError(f"a period of {period} samples has too few bins for {groups} groups")
    bins = tuple(owned[c % groups] for c in range(channels))
    rng = np.random.default_rng(seed)
    phases = tuple(rng.uniform(0, 2 * np.pi, len(b)) for b in bins)
    amplitudes = tuple(level * math.sqrt(2.0 / len(b)) for b in bins)
    return Multitone(period, channels, groups, level, amplitudes, bins, phases)
