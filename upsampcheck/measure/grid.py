"""Grid inference: which upsampling grid ``g = fs / K`` explains a file's stationary lines.

A stage whose input runs at ``fs_in`` puts its lines on multiples of ``fs_in``; the stages
after it multiply the rate by their factors, so at the output ``fs_in = fs / K`` with ``K`` the
product of the later factors: an integer built from small primes (MelGAN/HiFi-GAN 8·8·2·2 at
22050 Hz: 86.13, 689.06, 5512.5 and 11025 Hz). Every line of every stage lies on the finest
grid ``fs / ∏ factors``.

**Candidates.** ``K`` runs over the 7-smooth integers (``2^a 3^b 5^c 7^d``) from 2 up to the
largest whose spacing still separates two lines' main lobes (``min_spacing_hz``). Line ``f``
is on grid ``K`` when ``|f − m·fs/K| <= tolerance`` for an integer ``m >= 1``.

**Chance.** A line at a random frequency lands within the tolerance ``τ`` of a multiple of
``g`` with probability ``p = 2τ / g``, so ``n`` of ``N`` lines do with the binomial tail
``P(X >= n)``. Coarse grids are the likelier explanation a priori and fine grids explain
anything, so the ``r``-th candidate (by increasing ``K``) is charged ``r · H`` (``H``: the
harmonic number of the candidate count), a weighted Bonferroni correction whose weights sum
to one: ``false_alarm = P(X >= n) · r · H`` bounds the chance that lines at random frequencies
would produce a grid this convincing. The grid is the candidate with the smallest false
alarm, if that is below ``alpha``; else there is none.

For the grid found, every divisor ``K'`` of ``K`` is a candidate stage input rate
``fs / K'``; each is listed with the lines it explains and how many of the grid's lines would
land on it by chance (``n_K · K' / K``), so a rate that explains far more than chance is a stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

PRIMES = (2, 3, 5, 7)


def smooth_numbers(limit: int) -> list[int]:
    """The integers ``2 .. limit`` with no prime factor above 7, increasing."""
    found = {1}
    for p in PRIMES:
        for value in sorted(found):
            value *= p
            while value <= limit:
                found.add(value)
                value *= p
    return sorted(v for v in found if v >= 2)


def binomial_tail(n: int, total: int, p: float) -> float:
    """``P(X >= n)`` for ``X ~ Binomial(total, p)``."""
    if n <= 0:
        return 1.0
    if p >= 1.0:
        return 1.0
    return min(
        1.0, sum(math.comb(total, i) * p**i * (1 - p) ** (total - i) for i in range(n, total + 1))
    )


def on_grid(freq_hz: float, spacing_hz: float, tolerance_hz: float) -> bool:
    """Within ``tolerance_hz`` of a multiple ``m >= 1`` of ``spacing_hz``."""
    m = round(freq_hz / spacing_hz)
    return m >= 1 and abs(freq_hz - m * spacing_hz) <= tolerance_hz


@dataclass(frozen=True)
class StageRate:
    """A candidate stage input rate ``fs / factor`` and the lines on its multiples."""

    factor: int
    fs_in_hz: float
    lines: int
    by_chance: float


@dataclass(frozen=True)
class Grid:
    """The inferred grid: ``spacing_hz = fs / factor``; ``fitted_spacing_hz`` is the least
    squares spacing of the lines it explains (``Σ m f / Σ m²``), a check on ``fs``."""

    factor: int
    spacing_hz: float
    fitted_spacing_hz: float
    explained: int
    total: int
    tolerance_hz: float
    false_alarm: float
    rates: list[StageRate] = field(default_factory=list)

    def explains(self, freq_hz: float) -> bool:
        return on_grid(freq_hz, self.spacing_hz, self.tolerance_hz)

    def coarsest_rate(self, freq_hz: float) -> float | None:
        """The highest candidate stage input rate on whose multiples ``freq_hz`` lies."""
        rates = [r.fs_in_hz for r in self.rates if on_grid(freq_hz, r.fs_in_hz, self.tolerance_hz)]
        return max(rates, default=None)


def infer_grid(
    freqs_hz: list[float],
    sample_rate: float,
    tolerance_hz: float,
    min_spacing_hz: float,
    alpha: float = 0.01,
    chance: Callable[[int], float] | None = None,
) -> Grid | None:
    """The grid ``fs / K`` that best explains the line frequencies ``freqs_hz``, or None when
    no candidate's false alarm is below ``alpha`` (see the module docstring).

    ``chance(K)``: the probability that one line lands on grid ``K`` by chance; by default
    ``2τ / g`` (a line at a uniformly random frequency). Lines locked to the sample clock are
    exact fractions of ``fs``: for them it is the share of the tested candidates that lie on
    multiples of ``fs / K`` (:func:`~.coherence.grid_chance`)."""
    total = len(freqs_hz)
    if total == 0 or min_spacing_hz <= 0:
        return None
    candidates = smooth_numbers(int(sample_rate / min_spacing_hz))
    if not candidates:
        return None
    harmonic = sum(1 / r for r in range(1, len(candidates) + 1))
    best: tuple[float, int, int] | None = None
    for rank, factor in enumerate(candidates, start=1):
        spacing = sample_rate / factor
        explained = sum(on_grid(f, spacing, tolerance_hz) for f in freqs_hz)
        if explained == 0:
            continue
        p = min(1.0, 2 * tolerance_hz / spacing) if chance is None else chance(factor)
        false_alarm = min(1.0, binomial_tail(explained, total, p) * rank * harmonic)
        if best is None or false_alarm < best[0]:
            best = (false_alarm, factor, explained)
    if best is None or best[0] >= alpha:
        return None
    false_alarm, factor, explained = best
    spacing = sample_rate / factor
    on = [f for f in freqs_hz if on_grid(f, spacing, tolerance_hz)]
    harmonics = [round(f / spacing) for f in on]
    fitted = sum(m * f for m, f in zip(harmonics, on, strict=True)) / sum(m * m for m in harmonics)
    rates = []
    for divisor in (d for d in range(1, factor + 1) if factor % d == 0):
        rate = sample_rate / divisor
        count = sum(on_grid(f, rate, tolerance_hz) for f in on)
        if count:
            rates.append(StageRate(divisor, rate, count, explained * divisor / factor))
    return Grid(factor, spacing, fitted, explained, total, tolerance_hz, false_alarm, rates)
