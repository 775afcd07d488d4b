"""The model output's own DC under silence: an ``offset`` finding like every stage's.

With ``y`` the model output's steady-state periods (rows ``noise, silence, dc``; ``N_out``
samples per probe period), the offset is the mean of the silence response, RMS over output
channels: ``dc = sqrt(mean_o (mean_n y_silence[o, n])²)``. It is reported relative to the
output's signal level (the power on the driven bins of the multitone minus silence, as for a
stage: ``10 log10(dc² / signal)``) and in dBFS (``20 log10 dc``, full scale 1.0). Which part of
the model adds it is told by the last measured stage's own output DC (``dc_db`` over its signal
level, in absolute terms): when that is at least 6 dB below the output's, the offset is added
after that stage (a bias in the layers after the last upsampler); else it is there already.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..config import Thresholds
from ..errors import UsageError
from ..measure.analysis import spectrum_of
from ..measure.lines import FLOOR_DB
from ..measure.periodic import bin_power, driven_bins
from ..measure.reduce import reduce_periods
from ..report.findings import Finding, StageResult, escalate
from . import periods

if TYPE_CHECKING:
    from .stages import StageContext

ADDED_AFTER_DB = 6.0
"""The output's DC counts as added after the last stage when it is this much above that
stage's own."""


def output_dc(y_out: torch.Tensor, n_out: int, mt_period: int, groups: int) -> tuple[float, float]:
    """``(dc, signal_power)`` of the model output ``y_out (P, k, T)``: the silence response's
    mean (RMS over channels) and the power on the driven bins of the multitone minus silence,
    over the middle whole periods of ``n_out`` samples."""
    rows = reduce_periods(periods.centre_periods(y_out[:3], n_out), n_out)
    v = spectrum_of(rows.fold[0] - rows.fold[1])
    power = bin_power(torch.from_numpy(v), n_out).mean(0).numpy()
    out_bins, _ = driven_bins(n_out, mt_period, groups)
    dc = float(rows.fold[1].double().mean(-1).pow(2).mean().sqrt())
    return dc, float(power[out_bins].sum()) + 1e-300


def offset_finding(
    dc: float, signal_power: float, stages: list[StageResult], t: Thresholds
) -> Finding:
    """The output's ``offset`` finding: DC under silence re signal level and in dBFS, a warning
    above ``offset-warn-db`` (a failure where ``offset`` is in fail-on), naming the stage after
    which it appears where that can be told."""
    if dc <= 0:
        return Finding("offset", "pass", "output", "DC under silence: none")
    re_signal = max(10 * math.log10(dc**2 / signal_power), FLOOR_DB)
    dbfs = 20 * math.log10(dc)
    where = ""
    if stages:
        last = stages[-1]
        m = last.measurement
        own = 10 * math.log10(max(m.signal_power * 10 ** (m.dc_db / 10), 1e-300)) / 2
        if own < dbfs - ADDED_AFTER_DB:
            where = f"; added after the last upsampler {last.name}"
        else:
            where = f"; already at the output of {last.name}"
    message = (
        f"DC under silence: {re_signal:.1f} dB relative to signal level ({dbfs:.1f} dBFS){where}"
    )
    if re_signal <= t.offset_warn_db:
        return Finding("offset", "pass", "output", message, level_db=re_signal)
    cause = "a bias (or a ReLU) leaves a DC offset at the model output under silence" + (
        " (after the last upsampler: the final layers' bias)" if "added after" in where else ""
    )
    fix = "drop the bias of the final layers, or follow them with a DC-blocking high-pass"
    severity = escalate("warn", "offset", t)
    return Finding("offset", severity, "output", message, cause, fix, 0.0, re_signal)


def output_offset(
    y_out: torch.Tensor, ctx: StageContext, stages: list[StageResult], t: Thresholds
) -> Finding | None:
    """:func:`offset_finding` for the model output ``y_out (P, k, T)`` at the output rate
    ``ctx.sample_rate`` (``N_out = M · sample_rate / fs0`` samples per period); None, with a
    note, when the output does not hold whole periods."""
    period_out = periods.whole(periods.rate_ratio(ctx.sample_rate / ctx.fs0) * ctx.period)
    try:
        if period_out is None:
            raise ValueError("no whole period")
        dc, signal = output_dc(y_out, period_out, ctx.period, ctx.groups)
    except (ValueError, UsageError):
        ctx.notes.append("the output does not hold whole probe periods; its DC not measured")
        return None
    return offset_finding(dc, signal, stages, t)
