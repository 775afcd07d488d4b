"""Pure measurement functions: spectra, tonal lines, response, images and offsets (docs/method.md).

Conventions. A stage turns ``x: (P, C_in, T_in)`` at ``fs_in`` into ``y: (P, C_out, T_out)`` at
``fs_out = factor * fs_in``; rows are probes (:mod:`upsampcheck.measure.probes`). Only the interior
``[margin, T - margin)`` of an output is measured, so boundary transients don't pass for
broadband content. Power spectra are one-sided Welch averages (Kaiser window with β = 18, whose
leakage stays below −150 dB beyond ±7 bins, so a loud line has no sidelobes to mistake for
lines; 50 % overlap; each frame's mean removed), scaled so that the bins sum to the mean power
per sample; a line's power is the sum over its main lobe, exact wherever the line falls.

All levels are in dB relative to the *signal level*: the RMS the stage gives white noise of the
same input RMS as the probe analysed, ``probe_rms * noise_gain``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

FLOOR_DB = -200.0
"""Levels are clipped here: what lies below is not a number anyone acts on."""
ROUNDOFF_FLOOR_DB = -140.0
"""Spectra are floored here (re signal level) before lines are sought: float32 round-off lies
below it, so prominences never measure round-off, which varies with the thread count."""
KAISER_BETA = 18.0
LOBE = 7
"""Half-width, in bins, of a line's main lobe under the Kaiser window (below −150 dB past it)."""
RESPONSE_POINTS = (0.25, 0.5, 0.75, 0.9)
"""Where the magnitude response is reported, as fractions of the input Nyquist."""
EXCERPT_SECONDS = 1.0
"""How much of each probe's output (interior, first channel) is kept to listen to."""


@dataclass(frozen=True)
class LineSettings:
    """How tonal lines are told from the floor (see ``configs/default.toml``)."""

    min_level_db: float = -110.0
    min_prominence_db: float = 10.0


@dataclass
class Line:
    """A tonal line in a stage's output spectrum."""

    freq_hz: float
    level_db: float
    prominence_db: float
    probe: str
    on_grid: bool
    origin: str = ""
    """The stage that introduced the line (filled in by :mod:`upsampcheck.measure.attribution`)."""


@dataclass
class StageMeasurement:
    """Everything measured on one stage; ``spectra`` and ``response`` are kept for the plots."""

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
    excerpts: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """Per probe, the first :data:`EXCERPT_SECONDS` of the output's interior, channel 0,
    ``(T,)`` float32 at ``fs_in * factor``: what the report lets a user hear."""
    span_s: float = 0.0
    """Duration of the measured interior (what the spectrograms cover), in seconds."""

    @property
    def max_line_db(self) -> float | None:
        """The loudest line's level, or None when there is none."""
        return max((line.level_db for line in self.lines), default=None)


def to_db(power: float | np.ndarray) -> float | np.ndarray:
    """``10 log10(power)``, clipped below at :data:`FLOOR_DB`."""
    return np.maximum(10 * np.log10(np.maximum(power, 1e-300)), FLOOR_DB)


def interior(y: torch.Tensor, margin: int) -> torch.Tensor:
    """``y[..., margin:T-margin]``; refuses a margin that leaves nothing to measure."""
    if y.shape[-1] - 2 * margin < 16:
        raise ValueError(
            f"signal of {y.shape[-1]} samples is too short to drop {margin} at each end"
        )
    return y[..., margin : y.shape[-1] - margin]


def choose_nfft(n_samples: int, grid_factor: int, min_frames: int = 6, target: int = 4096) -> int:
    """A Welch frame length: ``grid_factor · 2^k`` (so lines at multiples of ``fs / grid_factor``
    fall on bins, 16 or more bins apart), the smallest such length not below ``target``, then
    halved while ``n_samples`` holds fewer than ``min_frames`` half-overlapping frames."""
    n_fft = max(1, int(grid_factor)) * 16
    while n_fft < target:
        n_fft *= 2
    while n_fft > 16 * grid_factor and n_fft * (min_frames + 1) > 2 * n_samples:
        n_fft //= 2
    return min(n_fft, n_samples)


def power_spectrum(y: torch.Tensor, n_fft: int) -> np.ndarray:
    """One-sided Welch power spectrum of ``y: (..., T)``, averaged over all leading dims.

    Returns ``(n_fft // 2 + 1,)`` float64 bins that sum to the mean power per sample (each
    frame's mean removed): a line of RMS ``a`` contributes ``a²`` spread over its main lobe.
    Rows are transformed a block at a time, so a 512-channel signal costs no more memory than
    a few rows.
    """
    rows = y.reshape(-1, y.shape[-1])
    window = torch.kaiser_window(
        n_fft, periodic=True, beta=KAISER_BETA, dtype=torch.float64, device=y.device
    )
    block = max(1, (1 << 22) // max(1, 2 * rows.shape[-1]))  # about 64 MB of frames a block
    spec = torch.zeros(n_fft // 2 + 1, dtype=torch.float64, device=y.device)
    count = 0
    for start in range(0, rows.shape[0], block):
        frames = rows[start : start + block].double().unfold(-1, n_fft, n_fft // 2)
        frames = frames - frames.mean(-1, keepdim=True)
        bins = torch.fft.rfft(frames * window, dim=-1)
        spec += (bins.real.square() + bins.imag.square()).sum(dim=(0, 1))
        count += frames.shape[0] * frames.shape[1]
    spec = spec / (count * n_fft * window.pow(2).sum())
    spec[1 : (n_fft + 1) // 2] *= 2  # fold the negative frequencies (not DC, not Nyquist)
    return spec.cpu().numpy()


def line_power(spectrum: np.ndarray, k: int) -> float:
    """Power of a line centred on bin ``k``: the sum over its main lobe."""
    return float(spectrum[max(k - LOBE, 0) : k + LOBE + 1].sum())


def peaks_with_prominence(spectrum_db: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of ``spectrum_db`` (the highest bin within ±``reach // 2``) and each one's
    prominence within ±``reach`` bins: its height above the higher of the lowest points on its
    left and on its right.

    A bounded-window version of ``scipy.signal.find_peaks(prominence=..., wlen=...)``, written
    with pooling so this hot path needs no ``scipy.signal`` import (half a second of start-up).
    """
    x = torch.from_numpy(spectrum_db)[None, None]
    n = x.shape[-1]
    # The one-sided spectrum mirrors about DC and the Nyquist: pad by reflection.
    mirrored = F.pad(x, (reach, reach), mode="reflect")
    top = F.max_pool1d(
        mirrored[..., reach - reach // 2 : n + reach + reach // 2], reach // 2 * 2 + 1, 1
    )
    low = -F.max_pool1d(-mirrored, reach, 1)  # low[i]: min of x[i - reach .. i - 1]
    left, right = low[..., :n], low[..., reach + 1 : n + reach + 1]
    is_peak = x == top
    prominence = x - torch.maximum(left, right)
    k = torch.nonzero(is_peak[0, 0]).flatten()
    return k.numpy(), prominence[0, 0, k].numpy()


def find_lines(
    spectrum: np.ndarray,
    fs: float,
    reference_power: float,
    probe: str,
    grid_hz: list[float],
    settings: LineSettings = LineSettings(),
) -> list[Line]:
    """Lines that stand ``min_prominence_db`` above their surroundings and ``min_level_db``
    above the signal level ``reference_power`` (a power, i.e. RMS²).

    Prominence is measured within ±2 main lobes (:func:`peaks_with_prominence`), so a line on a
    slope or between dense neighbours is judged against its own floor, and the broad lobes of a
    filter response are not lines. Lines closer to DC than a main lobe are skipped (the offset
    check covers DC). ``on_grid``: within a bin of ``m * g`` for some ``g`` in ``grid_hz``.
    """
    n_fft = 2 * (len(spectrum) - 1)
    bin_hz = fs / n_fft
    # Below the float32 round-off floor nothing is a number (it changes with the thread count).
    spectrum = np.maximum(spectrum, reference_power * 10 ** (ROUNDOFF_FLOOR_DB / 10))
    spectrum_db = 10 * np.log10(spectrum + 1e-300)
    peaks, prominences = peaks_with_prominence(spectrum_db, 2 * LOBE)
    lines = []
    for k, prominence in zip(peaks.tolist(), prominences.tolist(), strict=True):
        if k <= LOBE or prominence < settings.min_prominence_db:
            continue
        lobe = slice(k - LOBE, k + LOBE + 1)
        base = 10 ** ((spectrum_db[k] - prominence) / 10)
        power = line_power(spectrum, k) - base * len(spectrum[lobe])
        level = float(to_db(power / reference_power))
        if level < settings.min_level_db:
            continue
        bins = np.arange(len(spectrum))[lobe]
        if k + LOBE < len(spectrum):  # a full lobe: its centroid is the frequency
            freq = float((bins * spectrum[lobe]).sum() / spectrum[lobe].sum() * bin_hz)
        else:  # half a lobe: the one-sided spectrum folds a line this close onto the Nyquist
            freq = fs / 2
        on_grid = any(g > 0 and abs(freq - round(freq / g) * g) <= bin_hz for g in grid_hz)
        lines.append(Line(freq, level, float(prominence), probe, on_grid))
    return lines


def zero_insert(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``(..., T) -> (..., factor * T)`` with ``x`` at every ``factor``-th sample, zeros between."""
    up = x.new_zeros(*x.shape[:-1], x.shape[-1] * factor)
    up[..., ::factor] = x
    return up


def magnitude_response(
    x_noise: torch.Tensor, y_noise: torch.Tensor, factor: int, margin: int, n_fft: int
) -> tuple[np.ndarray, np.ndarray]:
    """Baseband magnitude response of a stage from its white-noise probe.

    ``|H(f)|² = S_yy(f) / S_xx(f)`` over ``0 < f ≤ fs_in / 2``, the input's spectrum taken at
    its own rate with frames of the same duration (the baseband of the input zero-inserted to
    the output rate, without the ``factor``-times larger transform). Pass ``y_noise`` with the
    silence response already subtracted. Where the input carries no energy (an earlier stage's
    null, 40 dB or more below the band's median) the ratio means nothing: the response there is
    interpolated from the bins around it. Returns (fractions of the input Nyquist, dB relative
    to the mean gain over 1-5 % of the band).
    """
    y = interior(y_noise, margin)
    if n_fft % factor == 0:  # the same time span per frame, at the input rate
        u = interior(x_noise, margin // factor)
        length = min(u.shape[-1], y.shape[-1] // factor)
        s_uu = power_spectrum(u[..., :length], n_fft // factor) / factor
        s_yy = power_spectrum(y[..., : length * factor], n_fft)[: len(s_uu)]
    else:
        u = interior(zero_insert(x_noise, factor), margin)
        length = min(u.shape[-1], y.shape[-1])
        s_uu = power_spectrum(u[..., :length], n_fft)
        s_yy = power_spectrum(y[..., :length], n_fft)
    ratio = s_yy[: len(s_uu)] / (s_uu + 1e-300)
    fractions = np.arange(len(ratio)) * 2 * factor / n_fft
    band = (fractions > 0) & (fractions <= 1.0 + 1e-9)
    fractions, ratio, s_uu = fractions[band], ratio[band], s_uu[band]
    driven = s_uu > 1e-4 * np.median(s_uu)
    if driven.sum() >= 2:
        ratio = np.interp(fractions, fractions[driven], ratio[driven])
    low = (fractions >= 0.01) & (fractions <= 0.05)
    reference = ratio[low].mean() if low.any() else ratio[0]
    return fractions, to_db(ratio / reference)


def response_points(fractions: np.ndarray, response_db: np.ndarray) -> dict[str, float]:
    """The response at :data:`RESPONSE_POINTS`, linearly interpolated between bins."""
    return {str(p): float(np.interp(p, fractions, response_db)) for p in RESPONSE_POINTS}


def minus3db_point(fractions: np.ndarray, response_db: np.ndarray) -> float | None:
    """First frequency (fraction of the input Nyquist) where the response falls to −3 dB, or
    None when it stays above −3 dB up to the Nyquist."""
    below = np.nonzero(response_db <= -3.0)[0]
    if len(below) == 0:
        return None
    k = below[0]
    if k == 0:
        return float(fractions[0])
    f0, f1, r0, r1 = fractions[k - 1], fractions[k], response_db[k - 1], response_db[k]
    return float(f0 + (f1 - f0) * (-3.0 - r0) / (r1 - r0))


def image_rejection(spectrum: np.ndarray, fs_out: float, tone_hz: float, fs_in: float) -> float:
    """Level of the first image ``fs_in - f0`` relative to the tone ``f0``, in dB (0 dB: no
    rejection, as zero insertion alone)."""
    bin_hz = fs_out / (2 * (len(spectrum) - 1))
    tone = line_power(spectrum, round(tone_hz / bin_hz))
    image = line_power(spectrum, round((fs_in - tone_hz) / bin_hz))
    return float(to_db(image / tone)) if tone > 0 else FLOOR_DB


def spectrogram(y: torch.Tensor, n_fft: int = 512, max_frames: int = 400) -> np.ndarray:
    """Power spectrogram ``(n_fft // 2 + 1, frames)`` of ``y: (T,)`` for display (Hann window,
    hop chosen to give at most ``max_frames`` frames), scaled like :func:`power_spectrum`."""
    n_fft = min(n_fft, y.shape[-1])
    hop = max(n_fft // 4, (y.shape[-1] - n_fft) // max_frames + 1)
    window = torch.hann_window(n_fft, device=y.device, dtype=torch.float64)
    spec = torch.stft(y.double(), n_fft, hop, window=window, center=False, return_complex=True)
    return (spec.abs().pow(2) * 2 / (n_fft * window.pow(2).sum())).cpu().numpy()


def excerpts(
    y: torch.Tensor, probes: tuple[str, ...], margin: int, fs: float
) -> dict[str, np.ndarray]:
    """``{probe: (T,) float32}``: the first :data:`EXCERPT_SECONDS` (at rate ``fs``) of the
    interior of ``y: (P, C, T)``, channel 0, one row per name in ``probes``."""
    inner = interior(y, margin)
    n = min(inner.shape[-1], max(1, round(EXCERPT_SECONDS * fs)))
    return {name: inner[i, 0, :n].float().cpu().numpy() for i, name in enumerate(probes)}


def rms(x: torch.Tensor) -> float:
    """Root mean square over every element."""
    return float(x.double().pow(2).mean().sqrt())


def probe_lines(
    y: torch.Tensor,
    probes: tuple[str, ...],
    fs: float,
    margin: int,
    n_fft: int,
    grid_hz: list[float],
    settings: LineSettings = LineSettings(),
) -> tuple[dict[str, np.ndarray], list[Line]]:
    """Power spectra of every probe's output ``y (P, C, T)`` and the tonal lines of the DC,
    silence and noise probes, relative to the signal level ``rms(y_noise - y_silence)``.

    Deterministic output (bias, offsets) shows under silence; for the noise probe only what
    noise adds on top of silence is analysed, so the same line is not reported twice, and only
    lines on a stage's grid count: a nonlinearity turns noise into an offset that upsamplers
    replicate onto their grids, while an off-grid peak in a noise spectrum is a fluctuation.
    """
    row = {name: i for i, name in enumerate(probes)}
    y_in = interior(y, margin)
    noise_part = y_in[row["noise"]] - y_in[row["silence"]]
    signal_power = rms(noise_part) ** 2 + 1e-300
    spectra = {name: power_spectrum(y_in[row[name]], n_fft) for name in probes}
    spectra["noise"] = power_spectrum(noise_part, n_fft)
    lines = [
        line
        for name in ("dc", "silence", "noise")
        if name in row
        for line in find_lines(spectra[name], fs, signal_power, name, grid_hz, settings)
        if line.on_grid or name != "noise"
    ]
    return spectra, sorted(lines, key=lambda line: -line.level_db)


def measure_stage(
    x: torch.Tensor,
    y: torch.Tensor,
    probes: tuple[str, ...],
    fs_in: float,
    factor: int,
    margin: int,
    tone_hz: float | None = None,
    grid_hz: list[float] | None = None,
    settings: LineSettings = LineSettings(),
    grid_factor: int | None = None,
) -> StageMeasurement:
    """Measure one stage from probe inputs ``x (P, C_in, T_in)``, outputs ``y (P, C_out, T_out)``.

    The probes may have passed through earlier stages (a stack or model): what noise adds to
    silence is the signal, so the signal level is ``rms(y_noise - y_silence)`` and the gain its
    ratio to ``rms(x_noise - x_silence)``. ``margin`` output samples are dropped at each end
    (``margin // factor`` input samples). ``tone_hz`` is the frequency of the ``tone`` probe
    (None: no image measurement); ``grid_hz`` the input rates whose multiples count as "on
    grid" (default: this stage's ``fs_in``), ``grid_factor`` the ratio of ``fs_out`` to the
    lowest of them (the Welch frame is a multiple of it, so every grid line falls on a bin).
    """
    fs_out = fs_in * factor
    row = {name: i for i, name in enumerate(probes)}
    silence = y[row["silence"]]
    noise_part = y[row["noise"]] - silence
    x_noise = x[row["noise"]] - x[row["silence"]]
    x_in = interior(x[row["silence"]], margin // factor)
    y_in = interior(y, margin)
    signal_rms = rms(interior(noise_part, margin))
    input_rms = max(rms(interior(x_noise, margin // factor)), 1e-300)
    gain = signal_rms / input_rms
    signal_power = signal_rms**2 + 1e-300

    n_fft = choose_nfft(y_in.shape[-1], grid_factor or factor)
    spectra, lines = probe_lines(y, probes, fs_out, margin, n_fft, grid_hz or [fs_in], settings)
    fractions, response = magnitude_response(x_noise, noise_part, factor, margin, n_fft)
    images = None
    if tone_hz is not None and "tone" in row:
        images = image_rejection(spectra["tone"], fs_out, tone_hz, fs_in)
    dc = interior(silence, margin).double().mean(-1).pow(2).mean().sqrt().item()
    dc_in = x_in.double().mean(-1).pow(2).mean().sqrt().item()
    return StageMeasurement(
        fs_in=fs_in,
        factor=factor,
        noise_gain_db=float(to_db(gain**2)),
        lines=lines,
        response_db=response_points(fractions, response),
        minus3db_fraction=minus3db_point(fractions, response),
        image_rejection_db=images,
        dc_db=float(to_db(dc**2 / signal_power)),
        input_dc_db=float(to_db(dc_in**2 / input_rms**2)),
        signal_power=signal_power,
        freqs_hz=np.arange(n_fft // 2 + 1) * fs_out / n_fft,
        spectra=spectra,
        response_curve=(fractions, response),
        spectrograms={name: spectrogram(y_in[row[name], 0]) for name in probes},
        excerpts=excerpts(y, probes, margin, fs_out),
        span_s=y_in.shape[-1] / fs_out,
    )
