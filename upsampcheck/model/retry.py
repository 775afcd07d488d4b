"""When the probe pass does not give what the check needs: a stage that has not settled gets
one retry with a longer lead-in, bounded by the model's work so far (:func:`retry_growth`); an
inferred length the model refuses is replaced by one near it that it takes
(:func:`accepted_length`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..check import PERIODS
from ..errors import StageError
from ..phases import phase
from ..report.findings import PERIODICITY_TOLERANCE_DB
from ..subjects.discover import Stage
from .discovery import discover_stages
from .taps import Tapped

if TYPE_CHECKING:
    from .check import ModelOptions

RETRY_LEAD = 4.0
"""Lead-in periods each side the one retry aims for after a stage has not settled."""
RETRY_GROWTH = 2.0
"""The retry's input is at most this many times the first pass's: its cost stays bounded."""


def unsettled(stages: list[Stage], taps: dict[str, Tapped]) -> list[str]:
    """The stages measured in the pass whose periods still differ (periodicity error above
    :data:`~.report.findings.PERIODICITY_TOLERANCE_DB`): not settled within the lead-in."""
    return [
        s.name
        for s in stages
        if (m := taps[s.name].measurement) is not None
        and not taps[s.name].nonfinite
        and m.periodicity_error_db > PERIODICITY_TOLERANCE_DB
    ]


def retry_frames(frames: int, period: int, growth: float = RETRY_GROWTH) -> int | None:
    """The probe length of the one retry after a stage has not settled: the lead-in grows to
    :data:`RETRY_LEAD` periods each side, but the input at most ``growth`` times as long as
    the first pass's ``frames``; None when that is less than one more period each side."""
    wanted = max(frames + 2 * period, math.ceil((PERIODS + 2 * RETRY_LEAD) * period))
    longer = min(wanted, math.floor(growth * frames))
    return longer if longer >= frames + 2 * period else None


def retry_growth(done: float, probe_pass: float) -> float:
    """How much longer than the first probe pass the retry's input may be: at most
    :data:`RETRY_GROWTH`, and at most the model's work so far (``done``: input samples through
    the whole model, every discovery pass and the first probe pass included) over that pass's
    (``probe_pass``), so that the retry, whose work grows with its input, adds no more than the
    run had done: the run with the retry stays within about twice the run without it
    (DPRNN-TasNet, whose probe pass is nearly all of its run, gets a short retry or none). Work,
    not time: the same model and flags make the same report on any machine, however loaded."""
    return RETRY_GROWTH if done <= 0 or probe_pass <= 0 else min(RETRY_GROWTH, done / probe_pass)


ACCEPT_TRIES = 5
"""Lengths :func:`accepted_length` tries (one discovery pass of one probe each)."""


@phase("discovery")
def accepted_length(
    model: nn.Module, shape: tuple[int, ...], frames: int, ran: int, batch: int | None,
    opts: ModelOptions, device: torch.device,
) -> tuple[int, int] | None:  # fmt: skip
    """A probe length near ``frames`` that the model takes, for an inferred shape whose chosen
    length it refused: ``ran`` (the length the shape search ran) plus a multiple of ``ran ·
    2^j``, for j = 0 … :data:`ACCEPT_TRIES` − 1, each tried with one discovery pass. A length
    rule the model's error does not state is often a residue: DCUNet's STFT (1024 points, hop
    256, uncentred) and its U-Net want ``(T − 1024) / 256`` divisible by 16, so 1024 runs,
    65,536 does not, and 1024 + 32 · 2048 does. Returns the length and its unit; None when
    none runs."""
    tried = {frames}
    for j in range(ACCEPT_TRIES):
        unit = ran * 2**j
        length = ran + max(-(-(frames - ran) // unit), 1) * unit
        if length in tried:
            continue
        tried.add(length)
        try:
            discover_stages(model, (*shape[:-1], length), batch, opts, device, shorter=False)
        except StageError:
            continue
        return length, unit
    return None
