"""One stage measured from whole periods of its periodic probe responses (docs/method.md).

Conventions. A stage turns ``x: (R, C_in, P·N_in)`` at ``fs_in`` into ``y: (R, C_out, P·N_out)``
at ``fs_out = S · fs_in``, ``N_out = S · N_in``, where the rows are the periodic probes
:data:`PERIODIC` (the multitone, silence and DC) cut to ``P ≥ 2`` whole steady-state periods
(:mod:`.periodic`). Nothing is estimated: the periods are averaged, transformed with a plain
DFT, and every number is read off exact bins.

- *signal level*: the output power on the driven bins (the multitone and its images) of the
  multitone minus silence, i.e. the stage's output RMS² for a white-spectrum input of the
  probe's RMS: the reference of every level;
- *lines*: grid-bin powers (:mod:`.lines`) of the DC and silence responses and of the multitone
  minus silence, relative to the signal level;
- *response* and *images*: :mod:`.response`; the image rejection at ``fs_in / 8`` is read on
  the driven input bin nearest ``fs_in / 8`` and its first image ``fs_in − f``;
- *offset*: the mean of the silence response (RMS over channels) relative to the signal level;
- *periodicity error*: the power of the difference of the last two periods relative to the
  row's own power (or the signal level, whichever is larger), largest over the rows: float
  rounding (about −140 dB) for a stage that has settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .lines import FLOOR_DB, Line, LineSettings, distortion_floor, grid_lines, to_db
from .periodic import bin_power, display_power, driven_bins
from .reduce import (
    DISPLAY_BINS,
    Periods,
    StageTaps,
    grid_residue,
    reduce_periods,
    reduce_stage,
)
from .response import (
    Response,
    measure_response,
    minus3db_point,
    response_points,
    transfer_functions,
)

__all__ = ["FLOOR_DB", "Line", "LineSettings", "StageMeasurement", "StagePlan", "to_db"]

PERIODIC: tuple[str, ...] = ("noise", "silence", "dc")
"""The periodic probe rows every measurement reads, in this order (``noise``: the multitone)."""
RESOLUTION = 1e-12
"""float32 rounds a large silence (bias) response to about −140 dB of itself, periodically, so
its rounding lands on the grid bins too: a multitone line must stand above −120 dB of the
silence response's total power (the prominence rule applies to this floor)."""
ROUNDOFF_DB = -120.0
"""Periodicity errors are reported no lower than this: below it the two periods differ by
float32 round-off only, whose exact value changes with the thread count (reports stay
byte-identical)."""
EXCERPT_SECONDS = 1.0
"""How much of each probe's analysed output (first channel) is kept to listen to."""
TRANSFERS_UP_TO = 64
"""Per-transfer-function curves are kept for stages with at most this many (in, out) pairs."""


@dataclass(frozen=True)
class StagePlan:
    """Where a stage sits in the periodic probe: its rates and periods in samples and bins.

    Attributes:
        fs_in: the stage's input rate (Hz).
        factor: its integer upsampling factor ``S``.
        period_in: input samples per probe period, ``N_in = M · fs_in / fs0``.
        mt_period: the multitone's period ``M`` at ``fs0`` (bins are ``fs0 / M`` apart).
        groups: the multitone's interleaved bin groups.
        grid: the grid spacing in bins: the lowest stage input rate so far, over ``fs0 / M``.
    """

    fs_in: float
    factor: int
    period_in: int
    mt_period: int
    groups: int
    grid: int

    @property
    def period_out(self) -> int:
        return self.period_in * self.factor

    @property
    def bin_hz(self) -> float:
        return self.fs_in / self.period_in


@dataclass
class StageMeasurement:
    """Everything measured on one stage; arrays are kept for the plots and the tests."""

    fs_in: float
    factor: float
    noise_gain_db: float
    lines: list[Line]
    response_db: dict[str, float]
    minus3db_fraction: float | None
    image_rejection_db: float | None
    dc_db: float
    input_dc_db: float
    signal_power: float = field(repr=False)
    freqs_hz: np.ndarray = field(repr=False)
    spectra: dict[str, np.ndarray] = field(repr=False)
    response_curve: tuple[np.ndarray, np.ndarray] = field(repr=False)
    spectrograms: dict[str, np.ndarray] = field(repr=False)
    image_tone_hz: float | None = None
    worst_image_db: float | None = None
    image_curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    periodicity_error_db: float = FLOOR_DB
    period_in: int = 0
    reference_bins: int = 0
    reference_gain: float = 1.0
    """The power gain ``response_curve`` is relative to (its 1–5 % reference), not in dB."""
    transfers: dict | None = field(default=None, repr=False)
    """``{(o, c): (fractions, |H_oc| dB)}`` on channel ``c``'s own bins, when measurable alone."""
    bin_hz: float = 0.0
    excerpts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Per probe, the first :data:`EXCERPT_SECONDS` of the analysed output, channel 0, ``(T,)``
    float32 at ``fs_in * factor``: what the report lets a user hear."""
    span_s: float = 0.0
    """Duration of the analysed output (what the spectrograms cover), in seconds."""
    input_lines: list[Line] = field(default_factory=list, repr=False)
    """Lines already at the stage's input (silence and DC probes, levels re the input's signal
    level): what the stage inherits rather than makes (:mod:`.attribution`)."""

    @property
    def max_line_db(self) -> float | None:
        """The loudest line's level, or None when there is none."""
        return max((line.level_db for line in self.lines), default=None)


def interior(y: torch.Tensor, margin: int) -> torch.Tensor:
    """``y[..., margin:T-margin]``; refuses a margin that leaves nothing to measure."""
    if y.shape[-1] - 2 * margin < 16:
        raise ValueError(
            f"signal of {y.shape[-1]} samples is too short to drop {margin} at each end"
        )
    return y[..., margin : y.shape[-1] - margin]


def spectrogram(y: torch.Tensor, n_fft: int = 512, max_frames: int = 400) -> np.ndarray:
    """Power spectrogram ``(n_fft // 2 + 1, frames)`` of ``y: (T,)`` for display (Hann window,
    hop chosen to give at most ``max_frames`` frames), scaled like
    :func:`~.reduce.power_spectrum`; in float32, since it is only drawn (a stage keeps five:
    BigVGAN's 77 stages hold 150 MB fewer than in float64 while the probe pass runs)."""
    n_fft = min(n_fft, y.shape[-1])
    hop = max(n_fft // 4, (y.shape[-1] - n_fft) // max_frames + 1)
    window = torch.hann_window(n_fft, device=y.device, dtype=torch.float64)
    spec = torch.stft(y.double(), n_fft, hop, window=window, center=False, return_complex=True)
    return (spec.abs().pow(2) * 2 / (n_fft * window.pow(2).sum())).float().cpu().numpy()


def spectrum_of(t: torch.Tensor) -> np.ndarray:
    """``rfft`` over the last axis in float64, as numpy."""
    return torch.fft.rfft(t.double(), dim=-1).cpu().numpy()


def periodic_lines(
    rows: Periods, r: int, n_out: int, grid: int, bin_hz: float, reference: float, probe: str,
    settings: LineSettings,
) -> tuple[list[Line], np.ndarray]:  # fmt: skip
    """Lines of row ``r`` of ``rows``, a probe whose response has the grid's period (silence,
    DC): its period folded to one grid period, whose bins are the grid lines. Returns the lines
    and the full-resolution per-bin spectrum (lines on the grid bins, the non-periodic rest
    spread evenly as the floor) for the figures."""
    period = n_out // grid
    one, residue = grid_residue(rows.fold[r], float(rows.residue[r]), period)
    power = bin_power(torch.fft.rfft(one, dim=-1), period).mean(0).cpu().numpy()
    floor = residue / max(1, rows.span // 2)
    lines = grid_lines(power, bin_hz * grid, 1, reference, probe, floor, settings)
    full = np.full(n_out // 2 + 1, floor)
    full[::grid] = power[: len(full[::grid])]
    return lines, full


def measure_stage(
    x: torch.Tensor,
    y: torch.Tensor,
    plan: StagePlan,
    settings: LineSettings = LineSettings(),
    others: dict[str, torch.Tensor] | None = None,
) -> StageMeasurement:
    """Measure one stage from whole periods of its periodic probe responses.

    Args:
        x: ``(3, C_in, P · N_in)``, the rows :data:`PERIODIC` at the stage input.
        y: ``(3, C_out, P · N_out)``, the same periods at the stage output.
        plan: the stage's rates, periods and grid (:class:`StagePlan`).
        settings: the line floor and prominence.
        others: output signals ``(C_out, T)`` of non-periodic probes (sweep, tone), shown in
            the figures only.
    """
    return measure_reduced(reduce_stage(x, y, plan, others), plan, settings)


def measure_reduced(
    taps: StageTaps, plan: StagePlan, settings: LineSettings = LineSettings()
) -> StageMeasurement:
    """:func:`measure_stage` on signals already reduced by :func:`reduce_stage`."""
    n_in, n_out = plan.period_in, plan.period_out
    row = {name: i for i, name in enumerate(PERIODIC)}
    xf, yf = taps.x.fold, taps.y.fold
    u = spectrum_of(xf[row["noise"]] - xf[row["silence"]])
    v = spectrum_of(yf[row["noise"]] - yf[row["silence"]])
    out_bins, _ = driven_bins(n_out, plan.mt_period, plan.groups)
    in_bins, groups = driven_bins(n_in, plan.mt_period, plan.groups)
    p_out = bin_power(torch.from_numpy(v), n_out).mean(0).numpy()
    p_in = bin_power(torch.from_numpy(u), n_in).mean(0).numpy()
    signal_power = float(p_out[out_bins].sum()) + 1e-300
    input_power = float(p_in[in_bins].sum()) + 1e-300

    response = measure_response(u, v, n_in, in_bins, groups)
    curve_db = response.response_db
    images, tone_hz = image_at_eighth(response, v, in_bins, n_in, plan.bin_hz)
    band = response.fractions <= 0.5
    worst = float(to_db(response.worst_image[band].max())) if band.any() else None

    lines = []
    spectra = {}
    for name in ("dc", "silence"):
        found, full = periodic_lines(
            taps.y, row[name], n_out, plan.grid, plan.bin_hz, signal_power, name, settings
        )
        lines += found
        spectra[name] = full
    lines += multitone_lines(p_out, spectra["silence"], plan, signal_power, settings)
    inherited = []
    if n_in % plan.grid == 0:
        for name in ("dc", "silence"):
            found, _ = periodic_lines(
                taps.x, row[name], n_in, plan.grid, plan.bin_hz, input_power, name, settings
            )
            inherited += found
    spectra["noise"] = p_out

    error = max(
        float(taps.y.change[r]) / max(float(taps.y.power[r]), signal_power)
        for r in range(len(PERIODIC))
    )
    dc = float(yf[row["silence"]].mean(-1).pow(2).mean().sqrt())
    dc_in = float(xf[row["silence"]].mean(-1).pow(2).mean().sqrt())
    width = min(DISPLAY_BINS, n_out // 2)
    shown = {name: display_power(p, n_out, width) for name, p in spectra.items()}
    spectrograms = {name: spectrogram(taps.y.first[row[name]]) for name in PERIODIC}
    for name, (spectrum, first) in taps.others.items():
        shown[name] = spectrum
        spectrograms[name] = spectrogram(first)
    pairs = xf.shape[1] * yf.shape[1]
    fs_out = plan.fs_in * plan.factor
    firsts = {name: taps.y.first[row[name]] for name in PERIODIC}
    firsts |= {name: first for name, (_, first) in taps.others.items()}
    return StageMeasurement(
        fs_in=plan.fs_in,
        factor=plan.factor,
        noise_gain_db=float(to_db(signal_power / input_power)),
        lines=sorted(lines, key=lambda line: -line.level_db),
        response_db=response_points(response),
        minus3db_fraction=minus3db_point(response.fractions, curve_db),
        image_rejection_db=images,
        dc_db=float(to_db(dc**2 / signal_power)),
        input_dc_db=float(to_db(dc_in**2 / input_power)),
        signal_power=signal_power,
        freqs_hz=np.linspace(0, plan.fs_in * plan.factor / 2, width + 1),
        spectra=shown,
        response_curve=(response.fractions, curve_db),
        spectrograms=spectrograms,
        image_tone_hz=tone_hz,
        worst_image_db=worst,
        image_curve=(response.fractions, to_db(response.first_image)),
        periodicity_error_db=max(float(to_db(error)), ROUNDOFF_DB),
        period_in=n_in,
        reference_bins=response.reference_bins,
        reference_gain=response.reference,
        transfers=transfer_functions(u, v, in_bins, n_in) if pairs <= TRANSFERS_UP_TO else None,
        bin_hz=plan.bin_hz,
        excerpts={name: excerpt(first[None], fs_out) for name, first in firsts.items()},
        span_s=taps.y.span / fs_out,
        input_lines=inherited,
    )


OWN_NUMBERS = (
    "response_db",
    "minus3db_fraction",
    "reference_bins",
    "image_rejection_db",
    "image_tone_hz",
    "worst_image_db",
)
"""The filtering and replicas numbers a stage driven alone gives as its own."""


def adopt_standalone(m: StageMeasurement, alone: StageMeasurement) -> dict[str, object]:
    """Give ``m`` (a stage measured inside a stack or model) the filtering and replicas
    numbers of the stage driven alone (:data:`OWN_NUMBERS`), and return what the chain gave.

    Inside a chain a multichannel stage's input channels all carry every source bin, mixed by
    the stages before it, so ``out / in`` on a bin is the gain for that mixture, not
    ``mean_c Σ_o |H_oc|²``; and bins next to earlier stages' grid lines carry too little for
    float32. The stage's own numbers are those of its weights, driven alone at its own rate;
    the through-chain curves (``response_curve``, ``image_curve``) stay for the figures."""
    chain = {name: _rounded(getattr(m, name)) for name in OWN_NUMBERS}
    for name in OWN_NUMBERS:
        setattr(m, name, getattr(alone, name))
    return chain


def _rounded(value: object) -> object:
    """A number (or a dict of them) to 3 decimals, as report.json writes the stage's own: so
    the report stays byte-identical whatever the thread count."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 3)
    return value


def excerpt(signal: torch.Tensor, fs: float) -> np.ndarray:
    """The first :data:`EXCERPT_SECONDS` of ``signal (C, T)`` at rate ``fs``, channel 0."""
    n = min(signal.shape[-1], max(1, round(EXCERPT_SECONDS * fs)))
    return signal[0, :n].float().cpu().numpy()


def image_at_eighth(
    response: Response, v: np.ndarray, bins: np.ndarray, n_in: int, bin_hz: float
) -> tuple[float | None, float | None]:
    """Image rejection on the driven bin nearest ``fs_in / 8``: the power of its first image
    ``N_in − q`` over its own, summed over output channels; and that bin's frequency."""
    if len(bins) == 0:
        return None, None
    q = int(bins[np.argmin(np.abs(bins - n_in / 8))])
    tone = float((np.abs(v[:, q]) ** 2).sum())
    image = float((np.abs(v[:, n_in - q]) ** 2).sum())
    return (float(to_db(image / tone)) if tone > 0 else FLOOR_DB), q * bin_hz


def output_lines(
    y: torch.Tensor, n_out: int, grid: int, bin_hz: float, settings: LineSettings, groups: int,
    mt_period: int,
) -> list[Line]:  # fmt: skip
    """The lines of a final output ``y (3, C, P · n_out)`` (rows :data:`PERIODIC`), as a stage
    output's would be measured (after blocks that do not upsample)."""
    rows = reduce_periods(y, n_out)
    v = spectrum_of(rows.fold[0] - rows.fold[1])
    p_out = bin_power(torch.from_numpy(v), n_out).mean(0).numpy()
    out_bins, _ = driven_bins(n_out, mt_period, groups)
    signal_power = float(p_out[out_bins].sum()) + 1e-300
    lines = []
    for name, r in (("dc", 2), ("silence", 1)):
        lines += periodic_lines(rows, r, n_out, grid, bin_hz, signal_power, name, settings)[0]
    silence = periodic_lines(rows, 1, n_out, grid, bin_hz, signal_power, "silence", settings)[1]
    plan = StagePlan(bin_hz * n_out, 1, n_out, mt_period, groups, grid)
    lines += multitone_lines(p_out, silence, plan, signal_power, settings)
    return sorted(lines, key=lambda line: -line.level_db)


def multitone_lines(
    power: np.ndarray, silence: np.ndarray, plan: StagePlan, reference: float,
    settings: LineSettings,
) -> list[Line]:  # fmt: skip
    """Grid lines of the multitone minus silence: over the distortion floor, and more than
    float32 can leave of the silence response on the same bin (:data:`RESOLUTION`)."""
    floor = np.maximum(distortion_floor(power, plan.grid), RESOLUTION * silence.sum())
    return grid_lines(power, plan.bin_hz, plan.grid, reference, "noise", floor, settings)
