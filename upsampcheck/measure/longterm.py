"""Long-term averaged high-resolution spectra of a file, accumulated frame by frame.

Frames of ``n`` samples (``n ≈ 16384 · fs / 44100``, a power of two: about 2.7 Hz bins at any
rate), hop ``n / 2``, each frame's mean removed, Kaiser window (β = 16: main lobe ±5.2 bins,
side lobes below −122 dB, so a 24-bit file's loud partials leave no skirts to mistake for
lines). Each frame's one-sided power spectrum is scaled so that its bins sum to the frame's
mean power per sample; a line of RMS ``a`` then puts ``a²`` into its main lobe, whatever its
position between bins. Channels are averaged in power, so a line in any channel shows.

:class:`SpectrumAccumulator` adds batches of frames to five running sums, so a ten-minute file
costs the memory of a few hundred spectra, not of its spectrogram:

* ``average``: all frames (the long-term spectrum),
* ``segments``: ``S`` consecutive groups of frames (for stationarity),
* ``quiet``: the quietest frames (lowest power, digital silence excluded), and the same split
  into the quiet frames of the file's first and second half (two independent looks),
* ``spectrogram``: frames pooled to at most ``cols`` columns and bins max-pooled to ``rows``
  rows (max, so a one-bin line stays visible), for the figure only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KAISER_BETA = 16.0
LOBE = 6
"""Half-width in bins of a line's main lobe (first null at 5.19 bins for β = 16)."""
REFERENCE_FRAME = 16384
REFERENCE_RATE = 44100.0


def frame_length(sample_rate: float, total_samples: int, min_frames: int = 16) -> int:
    """The analysis frame: the power of two nearest ``16384 · fs / 44100`` (2.69 Hz bins at
    44.1 kHz, 2.93 Hz at 48 kHz, 2.69 Hz at 22.05 kHz), halved until the file holds at least
    ``min_frames`` half-overlapping frames, never below 1024 samples."""
    n = 1 << max(10, round(math.log2(REFERENCE_FRAME * sample_rate / REFERENCE_RATE)))
    while n > 1024 and total_samples < (min_frames + 1) * n // 2:
        n //= 2
    return n


def frame_count(total_samples: int, n: int) -> int:
    """Frames of ``n`` samples, hop ``n / 2``, that fit in ``total_samples``."""
    return 0 if total_samples < n else (total_samples - n) // (n // 2) + 1


def kaiser(n: int) -> np.ndarray:
    """The periodic Kaiser window of length ``n`` (β = :data:`KAISER_BETA`)."""
    return np.kaiser(n + 1, KAISER_BETA)[:-1]


def enbw_bins(n: int) -> float:
    """Equivalent noise bandwidth of the window in bins, ``n Σw² / (Σw)²`` (2.30 for β=16).
    A line of power ``P`` on a floor of ``F`` per bin peaks at about ``P / enbw + F``."""
    w = kaiser(n)
    return float(n * np.sum(w**2) / np.sum(w) ** 2)


@dataclass
class Spectra:
    """The accumulated spectra of one file, each ``(n // 2 + 1,)`` bins (power per bin, bins
    of one spectrum summing to the mean power per sample of its frames)."""

    n_fft: int
    sample_rate: float
    average: np.ndarray
    quiet: np.ndarray | None
    segments: np.ndarray
    """``(S, bins)``: segment ``s`` averages frames ``[s·F/S, (s+1)·F/S)``."""
    segment_frames: np.ndarray
    quiet_frames: int
    quiet_halves: list[np.ndarray]
    """The quiet spectrum of the first and the second half of the file (those that have quiet
    frames)."""
    spectrogram: np.ndarray
    """``(rows, cols)`` power, bins max-pooled, frames averaged; for the figure."""

    @property
    def bin_hz(self) -> float:
        return self.sample_rate / self.n_fft

    @property
    def freqs_hz(self) -> np.ndarray:
        return np.arange(self.n_fft // 2 + 1) * self.bin_hz


class SpectrumAccumulator:
    """Running sums of frame power spectra; feed it every frame once, in order."""

    def __init__(
        self,
        n_fft: int,
        sample_rate: float,
        n_frames: int,
        quiet: np.ndarray,
        n_segments: int,
        rows: int = 512,
        cols: int = 600,
    ) -> None:
        """``quiet``: ``(n_frames,)`` bool, the frames that make the quiet spectrum."""
        self.n_fft, self.sample_rate, self.n_frames = n_fft, sample_rate, n_frames
        bins = n_fft // 2 + 1
        self.window = kaiser(n_fft)
        self.scale = 1.0 / (n_fft * np.sum(self.window**2))
        self.quiet_mask = quiet
        self.segment_of = np.arange(n_frames) * n_segments // max(n_frames, 1)
        self.n_segments = n_segments
        self.rows = min(rows, n_fft // 2)
        self.cols = max(1, min(cols, n_frames))
        self.col_of = np.arange(n_frames) * self.cols // max(n_frames, 1)
        self.average = np.zeros(bins)
        self.quiet = np.zeros(bins)
        self.half_of = (np.arange(n_frames) * 2 // max(n_frames, 1)).astype(int)
        self.halves = np.zeros((2, bins))
        self.segments = np.zeros((n_segments, bins))
        self.spectrogram = np.zeros((self.rows, self.cols))
        self.seen = 0
        self.dc_bins = 2 * LOBE
        self.window_dft = np.fft.rfft(self.window)[: self.dc_bins]

    def frame_spectra(self, batch: np.ndarray) -> np.ndarray:
        """``(F, C, n)`` frames -> ``(F, bins)`` one-sided power spectra, channels averaged.

        Each frame's mean ``m`` is removed in the frequency domain: ``DFT((x − m)·w) =
        DFT(x·w) − m·DFT(w)``, and ``DFT(w)`` is nonzero (above −122 dB) only in the lowest
        few bins, which saves a pass over the samples."""
        mean = batch.mean(-1)
        spec = np.fft.rfft(batch * self.window, axis=-1)
        spec[..., : self.dc_bins] -= mean[..., None] * self.window_dft
        parts = np.ascontiguousarray(spec).view(np.float64)
        np.square(parts, out=parts)
        power = (parts[..., 0::2] + parts[..., 1::2]).sum(1) * (self.scale / batch.shape[1])
        power[:, 1 : (self.n_fft + 1) // 2] *= 2  # fold negative frequencies
        return power

    def add(self, batch: np.ndarray) -> None:
        """Add the next ``F`` frames ``(F, C, n)``."""
        power = self.frame_spectra(batch)
        index = np.arange(self.seen, self.seen + len(power))
        self.seen += len(power)
        self.average += power.sum(0)
        quiet = self.quiet_mask[index]
        if quiet.any():
            self.quiet += power[quiet].sum(0)
            _add_runs(self.halves, self.half_of[index[quiet]], power[quiet])
        _add_runs(self.segments, self.segment_of[index], power)
        pooled = power[:, : self.n_fft // 2].reshape(len(power), self.rows, -1).max(-1)
        _add_runs(self.spectrogram.T, self.col_of[index], pooled)

    def result(self) -> Spectra:
        """The averages; call after every frame was added."""
        if self.seen != self.n_frames:
            raise ValueError(f"{self.seen} frames added, {self.n_frames} expected")
        per_segment = np.bincount(self.segment_of, minlength=self.n_segments)
        per_col = np.bincount(self.col_of, minlength=self.cols)
        quiet_count = int(self.quiet_mask.sum())
        per_half = np.bincount(self.half_of[self.quiet_mask], minlength=2)
        halves = [self.halves[h] / per_half[h] for h in range(2) if per_half[h]]
        return Spectra(
            n_fft=self.n_fft,
            sample_rate=self.sample_rate,
            average=self.average / self.n_frames,
            quiet=self.quiet / quiet_count if quiet_count else None,
            segments=self.segments / np.maximum(per_segment, 1)[:, None],
            segment_frames=per_segment,
            quiet_frames=quiet_count,
            quiet_halves=halves,
            spectrogram=self.spectrogram / np.maximum(per_col, 1)[None, :],
        )


def _add_runs(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``target[rows[i]] += values[i]`` for non-decreasing ``rows`` (runs summed at once)."""
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    target[rows[starts]] += np.add.reduceat(values, starts, axis=0)


def quiet_frames(frame_power: np.ndarray, fraction: float) -> np.ndarray:
    """The quietest ``fraction`` of the frames (at least one) by power, digital silence (power
    exactly 0) left out: nothing can be heard in it. All silent: no quiet frame."""
    mask = np.zeros(len(frame_power), dtype=bool)
    sounding = np.flatnonzero(frame_power > 0)
    if len(sounding) == 0:
        return mask
    count = max(1, round(fraction * len(sounding)))
    order = sounding[np.argsort(frame_power[sounding], kind="stable")]
    mask[order[:count]] = True
    return mask


def segment_count(n_frames: int, target: int = 16, min_frames: int = 4) -> int:
    """How many segments to cut ``n_frames`` into: ``target``, fewer when a segment would
    hold under ``min_frames`` frames, never under 2 (1 for a file of one or two frames)."""
    return max(min(target, n_frames // min_frames), min(2, n_frames))
