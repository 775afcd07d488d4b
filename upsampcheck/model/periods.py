"""The multitone period of a model probe: sized from the deepest stage, fitted to the input.

A model's stages run at rates ``fs_in = r · fs0`` (``fs0`` the model input rate, ``r`` a ratio
such as 1/8 after an encoder that downsamples by 8). The model is periodic in a period of
``M`` input samples only when every stage period ``N = r · M`` is a whole number, so ``M`` is
a power of two times the least common denominator of the ratios. The deepest stage (smallest
``r``) needs :data:`MIN_STAGE_PERIOD` samples per period (half as many bins across its band).
The probe holds :data:`LEAD` + ``PERIODS`` + :data:`LEAD` periods: the analysed periods sit in
the middle, clear of the boundary transients at both ends, and the steady-state check compares
them; a model that has not settled gets one, then two more periods on each side.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from ..check import OUTPUT_SAMPLES, PERIODS
from ..errors import UsageError

MIN_STAGE_PERIOD = 32
"""Samples per period at the deepest stage's input: 16 bins across its band."""
LEAD = 1.0
"""Periods of transient before and after the analysed ones (lengthened when not settled)."""


def rate_ratio(value: float) -> Fraction:
    """A stage's ``fs_in / fs0`` as a fraction with a small denominator."""
    return Fraction(value).limit_denominator(4096)


def period_unit(ratios: list[Fraction]) -> int:
    """The least ``M`` for which every ``r · M`` is whole."""
    unit = 1
    for r in ratios:
        unit = unit * r.denominator // math.gcd(unit, r.denominator)
    return unit


def min_model_period(ratios: list[Fraction], floor: int) -> int:
    """The shortest ``unit · 2^k ≥ floor`` giving the deepest stage :data:`MIN_STAGE_PERIOD`."""
    period, low = period_unit(ratios), min(ratios, default=Fraction(1))
    while period < floor or period * low < MIN_STAGE_PERIOD:
        period *= 2
    return period


def periods_in(length: int, period: int, lead: float = LEAD) -> bool:
    """True when ``length`` samples hold the analysed periods and the lead on both sides."""
    return length >= math.ceil((PERIODS + 2 * lead) * period)


def choose_period(
    ratios: list[Fraction], floor: int, length: int | None, factor: float, notes: list[str]
) -> tuple[int, int]:
    """``(M, input length)`` for a model whose stages run at ``ratios · fs0``.

    With a requested ``length``: the longest ``M`` it holds (the whole length is used); a
    length too short for the shortest ``M`` is extended to that minimum, with a note. Without
    one (an inferred shape): the shortest ``M`` giving :data:`OUTPUT_SAMPLES` output samples
    over the analysed periods at the model's output/input ``factor``.
    """
    shortest = min_model_period(ratios, floor)
    if length is None:
        period = shortest
        while PERIODS * period * factor < OUTPUT_SAMPLES:
            period *= 2
        return period, math.ceil((PERIODS + 2 * LEAD) * period)
    if not periods_in(length, shortest):
        needed = math.ceil((PERIODS + 2 * LEAD) * shortest)
        notes.append(
            f"input length {length} is too short for {PERIODS} periods of the {shortest}-sample "
            f"multitone the deepest stage needs (plus transients); extended to {needed}"
        )
        return shortest, needed
    period = shortest
    while periods_in(length, 2 * period):
        period *= 2
    return period, length


def centre_periods(t: torch.Tensor, period: int) -> torch.Tensor:
    """The :data:`PERIODS` whole periods in the middle of ``t (..., T)``."""
    span = PERIODS * period
    if t.shape[-1] < span:
        raise UsageError(f"signal of {t.shape[-1]} samples holds fewer than {PERIODS} periods")
    start = (t.shape[-1] - span) // 2
    return t[..., start : start + span]


def whole(value: Fraction) -> int | None:
    """``value`` as an int when it is whole, else None."""
    return int(value) if value.denominator == 1 else None
