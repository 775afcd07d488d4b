"""Phase coherence at exact grid frequencies: the lines locked to the sample clock.

A stage whose input runs at ``fs / K`` repeats its pattern every ``K`` output samples, so its
lines sit at exactly ``f = m·fs/K`` and keep their phase relative to the sample clock whatever
their level. Program material (speech, music, a note 0.1 Hz off a multiple) does not.

**Candidates.** ``K`` runs over the 7-smooth integers ``2 .. K_max``; every ``m·fs/K`` is a
reduced fraction ``p·fs/q`` (``0 < p/q <= 1/2``, ``q | K``), so each distinct frequency is
tested once, under its smallest denominator ``q``.

**Frames.** Frames ``j`` of ``2h`` samples start at ``j·h``. The window is
``w'(t) = w(t) / Σ_k w(t − k·h)`` (``w`` the Kaiser β = 16 window): its copies every ``h``
add to exactly one, so every sample counts once (``Σ w' = h``), neighbouring frames of noise
correlate by only ``ρ = Σ w'(t) w'(t+h) / Σ w'² = 0.062``, and its transform vanishes at
every multiple of ``fs/h`` but 0, the offsets where a stationary tone off the candidate
would turn by a whole number of turns per hop.

**Exact DTFT by folding.** With ``s`` the absolute sample index,
``Y_j = Σ_s x(s) w'(s − jh) e^{−2πi p s / q}``: the frame's DTFT at ``f`` with the phase advance
``2π f h j / fs`` removed (``X_j·e^{−2πi f h j/fs}``). ``e^{−2πi p s/q}`` has period ``q``, so
``Y_j = Σ_r P_j[r] e^{−2πi p r/q}`` with ``P_j[r] = Σ_{s ≡ r (mod q)} x(s) w'(s − jh)``: folding
the windowed frame modulo ``L`` (any multiple of ``q``) and one FFT of length ``L`` give every
candidate whose denominator divides ``L``. ``L`` runs over the maximal 7-smooth numbers up to
``K_max`` (:mod:`.exact_dtft`, which folds through common multiples first). The coherence
frames are ``2n`` samples at hop ``n`` (twice the analysis frames of :mod:`.longterm`; ``h``
below is their hop ``n``).

**Coherence.** ``R = |Σ_j u_j| / N`` with ``u_j = Y_j / |Y_j|`` over the ``N`` frames where
``Y_j`` carries a phase: digital silence is left out, and so is a frame where ``|Y_j|²`` is
below what rounding alone would give there (``LSB²/12 · Σw'²`` for integer samples, and
``10⁻¹²`` of the frame's power: float32 arithmetic), where the phase is the arithmetic's.
For program material the phases are uniform and
``z = |Σ u_j|² / (N (1 + 2ρ_u))`` is Exp(1) (Rayleigh), ``ρ_u = (π/4) ρ (1 + ρ²/8)`` the
correlation of neighbouring noise phasors, so ``P(z ≥ z0) = e^{−z0}``. At ``fs/2`` ``Y_j`` is
real, ``z`` is χ² with one degree of freedom: ``P = erfc(√(z0/2))``. Phase alone decides.

**Family-wise bound.** Candidate ``p/q`` gets the weight ``1 / (r(q) · H · c(q))``: ``r(q)`` the
rank of ``q`` among the smooth numbers (coarse grids first), ``H = Σ 1/r``, ``c(q)`` the number
of reduced fractions with denominator ``q`` in ``(0, 1/2]``. The weights sum to one, so
declaring a line locked when ``P <= α · weight`` keeps the chance of any false lock in a file of
noise or program under ``α`` (weighted Bonferroni). ``false_alarm = P / weight``.

**Levels.** ``Σ w' = h``, so a cosine of amplitude ``a`` gives ``Y_j = (a/2) h e^{iφ}``: the
coherent power is ``2 |mean_j Y_j|² / h²`` (``|mean_j Y_j|² / h²`` at ``fs/2``), over all
sounding frames or over the quiet ones. A line whose level follows the program has coherent
per-frame amplitudes ``a_j = Re(Y_j e^{−iφ})`` (``φ`` the mean phase) that correlate with the
frames' RMS; a bias replica's do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .exact_dtft import Candidates, candidates, fold, fold_plan, frame_dtft
from .longterm import kaiser, quiet_frames

__all__ = [
    "Candidates", "Coherence", "CoherenceAccumulator", "candidates", "cola_window", "fold",
    "fold_plan", "frame_dtft", "leak_envelope", "leaks", "noise_correlation",
]  # fmt: skip

PHASOR_RHO_FACTOR = math.pi / 4
PAIRS = 8
"""Coherence frames transformed together (each FFT call covers this many): 8 keeps every
temporary of a batch near 1 MiB at 48 kHz (9045 candidates) for about 5 % more time than 32."""
LEAK_REACH = 32
"""Bins either side of a candidate within which a spectral peak could leak into it."""


def cola_window(n: int) -> np.ndarray:
    """``w'``: the Kaiser window divided by the sum of its copies every ``n/2``."""
    w = kaiser(n)
    h = n // 2
    return w / np.tile(w[:h] + w[h:], 2)


def noise_correlation(window: np.ndarray, hop: int) -> float:
    """``ρ``: the correlation of neighbouring frames' DTFTs of white noise."""
    return float(np.sum(window[:-hop] * window[hop:]) / np.sum(window**2))


@dataclass
class Coherence:
    """Per candidate: ``phased`` (its ``N``), ``resultant`` (``|Σ u| / N``), ``z``, ``p_value``,
    ``false_alarm`` (``p / weight``), ``power`` and ``quiet_power`` (coherent, per sample),
    ``phase``, ``program_correlation``; ``strip``: ``(M, cols)`` mean ``|Y_j|²/h²`` per
    column of frames, for the figure."""

    candidates: Candidates
    frames: int
    quiet_frames: int
    phased: np.ndarray
    rho: float
    resultant: np.ndarray
    z: np.ndarray
    p_value: np.ndarray
    false_alarm: np.ndarray
    power: np.ndarray
    quiet_power: np.ndarray | None
    phase: np.ndarray
    program_correlation: np.ndarray
    strip: np.ndarray
    strip_rms: np.ndarray
    power_noise: np.ndarray
    """The part of ``power``'s bias correction that is noise: ``scale · spread · (1 + 2ρ) / N``,
    the variance of the mean of ``N`` frames of program. A coherent power within a few times
    this is not resolved (a pattern far under loud program)."""


def phasor_correlation(rho: float) -> float:
    """``ρ_u``: neighbouring unit phasors' correlation for complex Gaussians of correlation
    ``ρ`` (first terms of ``(π/4) ρ ₂F₁(½, ½; 2; ρ²)``)."""
    return PHASOR_RHO_FACTOR * rho * (1 + rho**2 / 8)


class CoherenceAccumulator:
    """Running sums over frames for every candidate; feed every analysis frame once, in order.

    The analysis frames are those of :mod:`.longterm` (``n`` samples, hop ``n/2``); the
    coherence frames are twice as long at hop ``n`` (analysis frames ``2k`` and ``2k + 2``
    side by side): the same window shape, half the frames to transform."""

    def __init__(
        self,
        cands: Candidates,
        n: int,
        frame_power: np.ndarray,
        quiet: np.ndarray,
        lsb: float | None = None,
        cols: int = 100,
    ) -> None:
        """``frame_power``: each analysis frame's power (0: digital silence); ``quiet``: the
        quiet analysis frames; ``lsb``: the quantisation step of integer samples (None for
        float)."""
        self.cands, self.n = cands, n
        self.size, self.hop = 2 * n, n
        self.window = cola_window(self.size).astype(np.float32)
        gain = float(np.sum(self.window.astype(float) ** 2))
        self.rho = noise_correlation(self.window.astype(float), self.hop)
        count = max((len(frame_power) - 3) // 2 + 1, 0)
        first, second = frame_power[0 : 2 * count : 2], frame_power[2 : 2 * count + 2 : 2]
        power = (first + second) / 2
        rounding = 0.0 if lsb is None else lsb**2 / 12
        self.phase_floor = (np.maximum(rounding, 1e-12 * power) * gain).astype(np.float32)
        self.sounding = (first > 0) & (second > 0)
        # The quietest coherence frames, as many in proportion as ``quiet`` holds of the
        # sounding analysis frames (requiring three quiet analysis frames in a row found none
        # where a codec scatters the quietest ones through a long quiet passage).
        fraction = float(quiet.sum()) / max(int(np.sum(frame_power > 0)), 1)
        chosen = (
            quiet_frames(np.where(self.sounding, power, 0.0), fraction) if quiet.any() else None
        )
        self.quiet = np.zeros(count, bool) if chosen is None else chosen & self.sounding
        self.rms = np.sqrt(np.maximum(power, 0.0))
        self.count = count
        self.cols = max(1, min(cols, count))  # 100 columns: 3.6 MB at 48 kHz (9045 lines)
        self.col_of = np.arange(count) * self.cols // max(count, 1)
        m = len(cands)
        self.sums = np.zeros((5, 2 * m))  # Σ u, Σ Y, Σ_quiet Y, Σ Y·r, Σ Y² (re, im interleaved)
        self.phased = np.zeros(m)  # frames whose Y carries a phase, per candidate
        self.sum_power = np.zeros(m)  # Σ |Y|²
        self.strip = np.zeros((self.cols, m), np.float32)
        self.carry = np.zeros((0, n), np.float32)  # even analysis frames not yet used up
        self.analysed = 0  # analysis frames received
        self.seen = 0  # coherence frames done

    def add(self, batch: np.ndarray) -> None:
        """The next ``F`` analysis frames, ``(F, n)`` or ``(F, channels, n)`` (their channel
        mix is used). Only the even ones are needed: coherence frame ``k`` is analysis frames
        ``2k`` and ``2k + 2`` side by side."""
        first = self.analysed
        self.analysed += len(batch)
        even = batch[(first % 2) :: 2]
        if even.ndim == 3:
            even = even.mean(1) if even.shape[1] > 1 else even[:, 0]
        self.carry = np.concatenate([self.carry, even.astype(np.float32)])  # frames 2·seen, ...
        self._drain(force=False)

    def _drain(self, force: bool) -> None:
        """Transform the coherence frames in hand: at least :data:`PAIRS` at a time (fewer,
        larger transforms) unless ``force`` or the file's last ones are in hand."""
        evens = self.carry
        pairs = min(len(evens) - 1, self.count - self.seen)
        if 0 < pairs < PAIRS and self.seen + pairs < self.count and not force:
            return
        if pairs > 0:
            half = self.n
            frames = np.empty((pairs, 2 * half), dtype=np.float32)
            np.multiply(evens[:pairs], self.window[:half], out=frames[:, :half])
            np.multiply(evens[1 : pairs + 1], self.window[half:], out=frames[:, half:])
            self._add(frames, np.arange(self.seen, self.seen + pairs))
            self.seen += pairs
            evens = evens[pairs:]
        self.carry = evens

    def _add(self, frames: np.ndarray, index: np.ndarray) -> None:
        """Coherence frames ``index`` (windowed, ``(F, 2n)``)."""
        y = frame_dtft(frames, index * self.hop, self.cands)
        parts = y.view(np.float32)  # (F, 2M): real, imaginary
        power = parts[:, 0::2] ** 2 + parts[:, 1::2] ** 2
        magnitude = np.sqrt(power)
        phased = power > self.phase_floor[index, None]
        inverse = np.divide(1.0, magnitude, out=np.zeros_like(magnitude), where=phased)
        unit = (y * inverse).view(np.float32)
        sounding = self.sounding[index]
        quiet = self.quiet[index]
        if not sounding.all():
            unit, parts, power, phased, y = (a[sounding] for a in (unit, parts, power, phased, y))
            quiet, index = quiet[sounding], index[sounding]
        if not len(index):
            return
        self.sums[0] += unit.sum(0)
        self.phased += phased.sum(0)
        self.sums[1] += parts.sum(0)
        if quiet.any():
            self.sums[2] += parts[quiet].sum(0)
        self.sums[3] += (parts * self.rms[index, None].astype(np.float32)).sum(0)
        self.sums[4] += (y * y).view(np.float32).sum(0)
        self.sum_power += power.sum(0)
        cols = self.col_of[index]
        starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
        self.strip[cols[starts]] += np.add.reduceat(power, starts, axis=0)

    def result(self) -> Coherence:
        """The statistics of every candidate (see the module docstring)."""
        self._drain(force=True)
        n = max(int(self.sounding.sum()), 1)
        nq = int(self.quiet.sum())
        h = self.hop
        rho_u = phasor_correlation(self.rho)
        sum_u, sum_y, sum_q, sum_yr, sum_y2 = (row[0::2] + 1j * row[1::2] for row in self.sums)
        phased = np.maximum(self.phased, 1)
        resultant = np.abs(sum_u) / phased
        z = np.abs(sum_u) ** 2 / (phased * (1 + 2 * rho_u))
        nyquist = 2 * self.cands.num == self.cands.den
        p = np.exp(-z)
        p[nyquist] = [math.erfc(math.sqrt(v / 2)) for v in z[nyquist]]
        false_alarm = np.minimum(p / self.cands.weights, 1.0)
        scale = np.where(nyquist, 1.0, 2.0) / h**2
        mean_y = sum_y / n
        spread = np.maximum(self.sum_power / n - np.abs(mean_y) ** 2, 0.0)
        noise = scale * spread * (1 + 2 * self.rho) / n
        power = np.maximum(scale * np.abs(mean_y) ** 2 - noise, 0.0)
        quiet = scale * np.abs(sum_q / nq) ** 2 if nq else None
        r = self.rms[self.sounding]
        turn = np.exp(-1j * np.angle(sum_y))  # a_j = Re(Y_j e^{−iφ})
        sum_a = np.abs(sum_y)
        sum_ar = (sum_yr * turn).real
        sum_a2 = (self.sum_power + (sum_y2 * turn**2).real) / 2
        cov = sum_ar - sum_a * r.sum() / n
        var_a = np.maximum(sum_a2 - sum_a**2 / n, 0.0)
        var_r = float(np.sum((r - r.mean()) ** 2)) if len(r) else 0.0
        # A steady line has no variance but rounding's: below a millionth of its mean square
        # the correlation is noise (0); so it is where the frames' RMS moves by under 1 %.
        varied = var_a > 1e-6 * sum_a2 / n
        moves = len(r) > 1 and var_r > 1e-4 * float(np.mean(r)) ** 2 * len(r)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(varied & moves, cov / np.sqrt(var_a * var_r), 0.0)
        corr = np.clip(corr, -1.0, 1.0)
        per_col = np.bincount(self.col_of[self.sounding], minlength=self.cols)
        strip = (self.strip / np.maximum(per_col, 1)[:, None]).T * (scale[:, None] / 2)
        rms = np.bincount(self.col_of, weights=self.rms**2, minlength=self.cols)
        rms = rms / np.maximum(np.bincount(self.col_of, minlength=self.cols), 1)
        return Coherence(
            self.cands, n, nq, self.phased.astype(int), self.rho, resultant, z, p,
            false_alarm, power, quiet, np.angle(sum_y), corr, strip.astype(np.float32), rms,
            noise,
        )  # fmt: skip


def leak_envelope(n: int, reach: int = 2 * LEAK_REACH, oversample: int = 16) -> np.ndarray:
    """``env[d]``: the largest ``|W'(ν)|² / |W'(0)|²`` for ``ν`` in ``[d − ½, d + ½]`` bins,
    ``d = 0 .. reach``: what a stationary component ``d`` bins away can at most put into a
    candidate's coherent power, per unit of its own power."""
    w = cola_window(n)
    # |W'| at every 1/oversample bin up to ``reach``: one n-point FFT per fraction r (the
    # window turned by r/oversample bin), not one FFT zero-padded to oversample·n points
    # (which took 12 MB at n = 16384).
    count = (reach + 1) * oversample + 1
    spectrum = np.empty(count)
    turn = np.exp(-2j * np.pi * np.arange(n) / (oversample * n))
    for r in range(oversample):
        index = np.arange(r, count, oversample)
        spectrum[index] = np.abs(np.fft.fft(w * turn**r)[index // oversample]) ** 2
    spectrum /= spectrum[0]
    env = np.empty(reach + 1)
    for d in range(reach + 1):
        low, high = max(0, (2 * d - 1) * oversample // 2), (2 * d + 1) * oversample // 2
        env[d] = spectrum[low : high + 1].max()
    return env


def leaks(
    freq_hz: float,
    power: float,
    spectrum: np.ndarray,
    peaks: np.ndarray,
    bin_hz: float,
    enbw: float,
    env: np.ndarray,
    scale: int = 2,
) -> bool:
    """Whether a candidate's coherent ``power`` could be the skirt of a stationary component
    up to :data:`LEAK_REACH` bins away: a peak of the long-term spectrum (bins of ``bin_hz``;
    power about its peak bin times ``enbw``) whose leak bound ``env`` (bins of the coherence
    window, ``scale`` to a spectrum bin) is at least the candidate's power. A peak within
    0.75 bin is the candidate's own (at ``fs/2`` within 1.25: the one-sided spectrum folds
    its peak one bin down)."""
    position = freq_hz / bin_hz
    offsets = np.abs(peaks - position)
    own = 1.25 if position >= len(spectrum) - 1.5 else 0.75
    near = (offsets > own) & (np.rint(offsets * scale) < len(env))
    if not near.any():
        return False
    index = np.rint(offsets[near] * scale).astype(int)
    bound = spectrum[peaks[near]] * enbw * 1.3 * env[index]
    return bool(bound.max() >= power)
