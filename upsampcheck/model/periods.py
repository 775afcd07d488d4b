"""The multitone period of a model probe: sized from the deepest stage, fitted to the input.

A model's stages run at rates ``fs_in = r · fs0`` (``fs0`` the model input rate, ``r`` a ratio
such as 1/8 after an encoder that downsamples by 8). The model is periodic in a period of
``M`` input samples only when every stage period ``N = r · M`` is a whole number, so ``M`` is
a power of two times the least common denominator of the ratios. The deepest stage (smallest
``r``) needs :data:`MIN_STAGE_PERIOD` samples per period (half as many bins across its band).
Every stage's band must also hold a driven bin of every input group in 1–5 % (the response
reference, :func:`~.measure.periodic.reference_groups`): ``M`` is doubled until it does (a
stage at ``fs0`` needs ``M ≥ 128`` for one group, 512 for four, 1024 for eight).
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
from ..measure.multitone import holds_groups
from ..measure.periodic import reference_groups

MIN_STAGE_PERIOD = 32
"""Samples per period at the deepest stage's input: 16 bins across its band."""
MIN_FIXED_PERIOD = 8
"""The shortest period a fixed-length input is probed with: two odd bins (1 and 3) across the
first band, and every grid line of every stage exact."""
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


def covers_references(ratios: list[Fraction], period: int, groups: int) -> bool:
    """True when every stage (input period ``r · period``) has a driven bin of every group in
    the 1–5 % reference band of its own input band."""
    return all(
        reference_groups(int(r * period), period, groups) == groups
        for r in ratios
        if (r * period).denominator == 1
    )


def min_model_period(
    ratios: list[Fraction], floor: int, groups: int = 1, references: bool = True
) -> int:
    """The shortest ``unit · 2^k ≥ floor`` giving the deepest stage :data:`MIN_STAGE_PERIOD`
    and (with ``references``) every stage its reference bins (:func:`covers_references`)."""
    period, low = period_unit(ratios), min(ratios, default=Fraction(1))
    while period < floor or period * low < MIN_STAGE_PERIOD:
        period *= 2
    while period < 2**24 and not holds_groups(period, groups):
        period *= 2
    while period < 2**24 and references and not covers_references(ratios, period, groups):
        period *= 2  # (bins are listed only below 2**24: a longer probe is refused for memory)
    return period


def periods_in(length: int, period: int, lead: float = LEAD) -> bool:
    """True when ``length`` samples hold the analysed periods and the lead on both sides."""
    return length >= math.ceil((PERIODS + 2 * lead) * period)


def choose_period(
    ratios: list[Fraction], floor: int, length: int | None, factor: float, notes: list[str],
    groups: int = 1, coarse: bool = False,
) -> tuple[int, int]:  # fmt: skip
    """``(M, input length)`` for a model whose stages run at ``ratios · fs0``.

    With a requested ``length``: the longest ``M`` it holds (the whole length is used); a
    length too short for the shortest ``M`` is extended to that minimum, with a note. Without
    one (an inferred shape): the shortest ``M`` giving :data:`OUTPUT_SAMPLES` output samples
    over the analysed periods at the model's output/input ``factor``.

    ``coarse`` (a length the user asked for): a length too short for the reference bins
    (:func:`covers_references`) but not for :data:`MIN_STAGE_PERIOD` keeps a shorter ``M``,
    with a note: the responses measured in the pass are coarser, and a stage whose band then
    has no driven bin in 1–5 % is read against its lowest one (noted per stage). One too short
    even for that is extended to that shorter minimum.
    """
    shortest = min_model_period(ratios, floor, groups)
    if length is None:
        period = shortest
        while PERIODS * period * factor < OUTPUT_SAMPLES:
            period *= 2
        return period, math.ceil((PERIODS + 2 * LEAD) * period)
    if not periods_in(length, shortest):
        full = math.ceil((PERIODS + 2 * LEAD) * shortest)
        least = min_model_period(ratios, floor, groups, references=False) if coarse else shortest
        if least < shortest:
            period = least
            while 2 * period < shortest and periods_in(length, 2 * period):
                period *= 2
            if not periods_in(length, period):
                notes.append(
                    f"input length {length} is too short for {PERIODS} periods of the "
                    f"{period}-sample multitone the deepest stage needs (plus transients); "
                    f"extended to {math.ceil((PERIODS + 2 * LEAD) * period)}"
                )
                length = math.ceil((PERIODS + 2 * LEAD) * period)
            notes.append(
                f"input length {length} holds a {period}-sample multitone period, short of "
                f"the {shortest} that puts driven bins in 1-5 % of every stage's band: the "
                "responses the probe pass measures are coarser, and relative to the lowest "
                "driven bin where a band has none in 1-5 % (a note names each such stage; "
                f"lengthen the time axis to {full} for the full resolution)"
            )
            return period, length
        notes.append(
            f"input length {length} is too short for {PERIODS} periods of the {shortest}-sample "
            f"multitone the deepest stage needs (plus transients); extended to {full}"
        )
        return shortest, full
    period = shortest
    while periods_in(length, 2 * period):
        period *= 2
    return period, length


def fixed_period(ratios: list[Fraction], length: int, notes: list[str]) -> int:
    """The longest ``M`` a fixed input ``length`` holds (an exported archive with a short
    example input): :data:`PERIODS` periods and at least half a period of lead-in each side
    (``3 M ≤ length``), ``M`` a multiple of the period unit and even. Every grid line is still
    exact; only the response resolution coarsens (``M / 2`` bins across the first band), and a
    note says so. Refused (UsageError) below :data:`MIN_FIXED_PERIOD`, naming the minimum."""
    unit = period_unit([*ratios, Fraction(1, 2)])
    low = min(ratios, default=Fraction(1))
    period = length * 2 // (2 * PERIODS + 2) // unit * unit
    while period >= MIN_FIXED_PERIOD and (period * low).denominator != 1:
        period -= unit
    needed = max(MIN_FIXED_PERIOD, unit)
    while needed * low < 1 or (needed * low).denominator != 1:
        needed += unit
    if period < needed:
        raise UsageError(
            f"the archive fixes the input length at {length} samples; the periodic probe needs "
            f"at least {math.ceil((PERIODS + 1) * needed)} ({PERIODS} periods of {needed} and "
            "half a period each side): re-export with a longer example input"
        )
    notes.append(
        f"the archive fixes the input length at {length} samples: the probe period is "
        f"{period} samples (half a period or more of lead-in each side), so every grid line is "
        f"exact but the response is read on {len(range(1, period // 2, 2))} bins across the "
        "first stage's band"
    )
    return period


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
