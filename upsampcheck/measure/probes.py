"""Probe signals (docs/method.md), generated at a stage's input rate, seeded and batched.

Every probe has the same RMS ``level`` so that levels measured on different probes
compare: the noise-like probe (``noise``: the periodic random-phase multitone of
:mod:`.multitone`) has RMS ``level`` on every channel, DC the value ``level``, the sweep and
the tone an amplitude of ``level * sqrt(2)``. Silence is all zeros (or ``silence_value``); its
nominal level is still ``level``, the level of a typical signal it stands in for. The multitone,
silence and DC are periodic (whole periods of the multitone's ``M`` samples); the sweep and the
tone are for the figures only.

The batch is laid out ``(P, C, T)``: one row per probe, ``C`` channels, ``T`` samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .multitone import Multitone, design_multitone

PROBES: tuple[str, ...] = ("noise", "silence", "dc", "sweep", "tone")
TONE_FRACTION = 0.25
"""The in-band tone for image rejection sits at this fraction of the input Nyquist (fs_in/8)."""
SWEEP_TOP = 0.95
"""The exponential sweep rises to this fraction of the input Nyquist."""


@dataclass(frozen=True)
class ProbeBatch:
    """A batch of probe signals and what they are.

    Attributes:
        signals: ``(P, C, T)`` float tensor, one row per name in ``names``.
        names: probe names, in row order.
        level: nominal RMS of every probe.
        fs_hz: the rate the probes were generated at.
    """

    signals: torch.Tensor
    names: tuple[str, ...]
    level: float
    fs_hz: float


def tone_frequency(fs_in: float) -> float:
    """The image-rejection tone: a quarter of the input Nyquist, ``fs_in / 8``."""
    return TONE_FRACTION * fs_in / 2


def exponential_sweep(t: torch.Tensor, f0: float, f1: float) -> torch.Tensor:
    """``cos`` of an exponential sweep from ``f0`` at ``t[0] = 0`` to ``f1`` at ``t[-1]``.

    Instantaneous frequency ``f0 (f1/f0)^(t/T)``; its phase ``2π f0 T (k^(t/T) - 1) / ln k``
    with ``k = f1 / f0`` (the same law as ``scipy.signal.chirp(method="logarithmic")``).
    """
    duration, ratio = float(t[-1]), f1 / f0
    phase = 2 * math.pi * f0 * duration / math.log(ratio) * (ratio ** (t / duration) - 1)
    return torch.cos(phase)


def make_probes(
    n_samples: int,
    fs_hz: float,
    channels: int = 1,
    *,
    seed: int = 0,
    level: float = 0.1,
    silence_value: float = 0.0,
    names: tuple[str, ...] = PROBES,
    dtype: torch.dtype = torch.float32,
    multitone: Multitone | None = None,
) -> ProbeBatch:
    """Generate the probe batch ``(len(names), channels, n_samples)`` at rate ``fs_hz``.

    ``noise`` is the periodic multitone ``multitone`` (default: one of period
    ``n_samples`` rounded down to even, seeded with ``seed``), interleaved over the channels;
    the other probes drive every channel with the same signal. The sweep is exponential from
    ``fs_hz / 1000`` to ``0.95 * fs_hz / 2``.
    """
    t = torch.arange(n_samples, dtype=torch.float64) / fs_hz
    amplitude = level * math.sqrt(2.0)
    rows = []
    for name in names:
        if name == "noise":
            if multitone is None:
                multitone = design_multitone(n_samples // 2 * 2, channels, seed, level)
            rows.append(multitone.signal(n_samples))
            continue
        if name == "silence":
            wave = torch.full_like(t, silence_value)
        elif name == "dc":
            wave = torch.full_like(t, level)
        elif name == "sweep":
            wave = amplitude * exponential_sweep(t, fs_hz / 1000, SWEEP_TOP * fs_hz / 2)
        elif name == "tone":
            wave = amplitude * torch.sin(2 * math.pi * tone_frequency(fs_hz) * t)
        else:
            raise ValueError(f"unknown probe {name!r}; choose from {', '.join(PROBES)}")
        rows.append(wave.expand(channels, n_samples))
    signals = torch.stack(rows).to(dtype)
    return ProbeBatch(signals=signals, names=tuple(names), level=level, fs_hz=fs_hz)
