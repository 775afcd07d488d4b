"""One file: two streamed passes, the locked lines, the grid, the clips.

Pass 1 (:func:`~..subjects.audio.scan`) measures every frame's power (so the quiet passages
are known) and the decoded length. Pass 2 (:func:`~..subjects.audio.frames`) feeds each batch
of frames to the long-term spectra (:mod:`..measure.longterm`) and, as their channel mix, to
the phase coherence at every candidate ``p·fs/q`` (:mod:`..measure.coherence`). The locked
lines (:mod:`.lines`) give the grid ``fs / K`` (:mod:`..measure.grid`); the spectral peaks that
are not locked are kept as description.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import AudioThresholds
from ..errors import UsageError
from ..measure import coherence, longterm, stationary
from ..measure.grid import infer_grid
from ..outputs.clips import Clip
from ..paths import shown
from ..subjects.audio import AudioInfo, frames, open_info, read_excerpt, scan
from .lines import locked_lines, merge, place_on_grid, spectral_lines
from .results import LSB, FileResult, db

MIN_SPACING_BINS = 16
"""The finest grid tested: ``K_max = n / 16`` (lines 16 bins apart are still resolved)."""
MIN_COHERENCE_FRAMES = 8
"""Fewer sounding coherence frames than this cannot show a lock (the test has no power)."""
CLIP_CHANNELS = 2
"""Clips of files with more channels are their channel mix."""


def clip_windows(frame_power: np.ndarray, width: int) -> tuple[int, int | None]:
    """(loudest, quietest) first frames of ``width`` consecutive frames by mean power; the
    quietest skips windows of pure digital silence (None when every window is silent)."""
    width = max(1, min(width, len(frame_power)))
    sums = np.convolve(frame_power, np.ones(width), mode="valid")
    loud = int(np.argmax(sums))
    sounding = np.flatnonzero(sums > 0)
    quiet = int(sounding[np.argmin(sums[sounding])]) if len(sounding) else None
    return loud, quiet


def make_clips(
    info: AudioInfo, index: int, frame_power: np.ndarray, hop: int, seconds: float
) -> list[Clip]:
    """An excerpt of the loudest and of the quietest stretch at true level (the report adds
    the normalised copies); the channel mix beyond two channels."""
    length = min(info.frames, max(1, round(seconds * info.sample_rate)))
    loud, quiet = clip_windows(frame_power, math.ceil(length / hop))
    clips = []
    for kind, first, title in (
        ("excerpt", loud, "the loudest stretch"),
        ("quiet", quiet, "the quietest stretch"),
    ):
        if first is None:
            continue
        start = max(0, min(first * hop, info.frames - length))
        samples = read_excerpt(info, start, length, mix=info.channels > CLIP_CHANNELS)
        what = f"{shown(info.path.name)}: {title} ({start / info.sample_rate:.1f} s on)"
        clips.append(Clip(f"file{index}_{kind}", what, samples, info.sample_rate))
    return clips


def quantisation_floor(lsb: float | None, n: int) -> float:
    """Power per bin of uniform rounding noise (``LSB² / 12`` per sample over ``n/2`` bins);
    0 for float and lossy files."""
    return 0.0 if lsb is None else lsb**2 / 12 / (n / 2)


LOSSY_LSB = 2.0**-15
"""The quantisation step a lossy file's pattern is measured in: 16-bit, the PCM nearly every
MP3, Vorbis and Opus file was encoded from (the decoded floats have no step of their own)."""
RESOLVED = 10.0
"""A coherent power at least this many times its estimator's noise
(:attr:`~upsampcheck.measure.coherence.Coherence.power_noise`) is resolved."""


def pattern_power(coh: coherence.Coherence) -> np.ndarray:
    """Each candidate's power in a pattern's size: the larger of its quiet-passage power and
    its coherent power over the file where that is resolved (:data:`RESOLVED`). Lines that
    follow the program are small in the quiet passages and large under it; a pattern under
    loud program (far below it) is measured where it is clean, in the quiet."""
    if coh.quiet_power is None:
        return coh.power
    resolved = np.where(coh.power >= RESOLVED * coh.power_noise, coh.power, 0.0)
    return np.maximum(coh.quiet_power, resolved)


def analyse_file(
    path: Path,
    t: AudioThresholds,
    index: int = 0,
    progress: Callable[[str], None] | None = None,
    media: bool = True,
) -> FileResult:
    """Measure one file (see the module docstring). Without ``media``, keep the numbers only:
    no spectrogram and no clips (what makes a file's figures and players, about 3 MB)."""
    step = progress or (lambda _text: None)
    path = Path(path)
    info = open_info(path)
    name = shown(path)
    notes = []
    estimate = info.frames if info.length_known else 1 << 40
    n = longterm.frame_length(info.sample_rate, estimate)
    hop = n // 2
    step(f"{shown(path.name)}: reading (pass 1 of 2)")
    first = scan(info, n, hop)
    if first.samples != info.frames:
        announced = f"{info.frames} samples" if info.length_known else "an unknown length"
        notes.append(
            f"{name}: decoded {first.samples} samples per channel; its header announced "
            f"{announced} (an estimate for this format, or none from a streaming encoder): the "
            "decoded length is used"
        )
        info = dataclasses.replace(info, frames=first.samples)
        if longterm.frame_length(info.sample_rate, info.frames) != n:  # the estimate was off
            n = longterm.frame_length(info.sample_rate, info.frames)
            hop = n // 2
            first = scan(info, n, hop)
    count = longterm.frame_count(info.frames, n)
    if count < 2:
        raise UsageError(
            f"{name}: {info.duration_s:.3f} s is too short to analyse; "
            f"give at least {3 * n / 2 / info.sample_rate:.2f} s"
        )
    standard = longterm.frame_length(info.sample_rate, 1 << 40)
    if n < standard:
        notes.append(
            f"{name}: short file; analysed with {n}-sample frames ({info.sample_rate / n:.1f} Hz "
            f"bins) instead of {standard}"
        )
    if info.lossy:
        notes.append(
            f"{name}: lossy format ({info.format}/{info.subtype}); the codec's band limit and "
            "quantisation can hide faint lines, and its frames (MP3: 1152 samples, Vorbis: 256 "
            "and 2048) can add faint locked lines of their own: check the file the model wrote; "
            "a pattern's size is given in 16-bit steps"
        )
    frame_power = first.frame_power[:count]
    quiet = longterm.quiet_frames(frame_power, t.quiet_fraction)
    silent = int(np.sum(frame_power == 0))
    if silent:
        notes.append(f"{name}: {silent} of {count} frames are digital silence (left out of quiet)")
    segments = longterm.segment_count(count)
    accumulator = longterm.SpectrumAccumulator(n, info.sample_rate, count, quiet, segments)
    cands = coherence.candidates(info.sample_rate, n // MIN_SPACING_BINS)
    lsb = LSB.get(info.subtype)
    locks = coherence.CoherenceAccumulator(cands, n, frame_power, quiet, lsb)
    step(f"{shown(path.name)}: spectra and phase coherence (pass 2 of 2)")
    spent = 0.0
    for batch in frames(info, n, hop):
        accumulator.add(batch)
        started = time.perf_counter()
        locks.add(batch)
        spent += time.perf_counter() - started
    spectra = accumulator.result()
    reference = float(spectra.average.sum())
    if reference <= 0:
        raise UsageError(f"{name}: digital silence throughout (or a constant); nothing to analyse")
    step(f"{shown(path.name)}: lines and grid")
    started = time.perf_counter()
    result = locks.result()
    q_floor = quantisation_floor(lsb, n)
    floor = np.maximum(stationary.floor_at(spectra.average), q_floor)
    quiet_floor = (
        np.maximum(stationary.floor_at(spectra.quiet), q_floor)
        if spectra.quiet is not None
        else None
    )
    spent += time.perf_counter() - started
    spectral = spectral_lines(spectra, floor, quiet_floor, reference, t)
    locked = []
    if result.frames >= MIN_COHERENCE_FRAMES:
        locked = locked_lines(result, spectra, floor, quiet_floor, reference, lsb, t)
    else:
        notes.append(
            f"{name}: only {result.frames} sounding frames; too few to test the phase lock"
        )
    lines = merge(locked, spectral, spectra.bin_hz)
    bin_hz = info.sample_rate / n
    grid = infer_grid(
        [line.freq_hz for line in locked],
        info.sample_rate,
        tolerance_hz=1e-7 * info.sample_rate,
        min_spacing_hz=MIN_SPACING_BINS * bin_hz,
        alpha=t.grid_false_alarm,
        chance=cands.grid_chance,
    )
    place_on_grid(lines, grid)
    spectra = dataclasses.replace(  # what the report needs: memory flat in the file count
        spectra,
        segments=spectra.segments[:0].copy(),  # a view would keep the (16, bins) array
        quiet_halves=[],
        spectrogram=spectra.spectrogram[:, : spectra.spectrogram.shape[1] if media else 0].astype(
            np.float32
        ),
    )
    pattern = None
    step_size = lsb if lsb is not None else (LOSSY_LSB if info.lossy else None)
    if grid is not None and step_size is not None:
        on = grid.factor % cands.den == 0  # every candidate on the grid, locked or not
        for line in locked:  # a probable test tone is not part of the pattern
            if line.probable_test_tone:
                p, q = line.lock.fraction
                on &= ~((cands.num == p) & (cands.den == q))
        pattern = math.sqrt(float(pattern_power(result)[on].sum())) / step_size
    power = max(first.power, 1e-300)
    quiet_power = float(frame_power[quiet].mean()) if quiet.any() else None
    return FileResult(
        label=name,
        info=info,
        n_fft=n,
        rms_dbfs=db(power),
        peak_dbfs=20 * math.log10(max(first.peak, 1e-150)),
        dc_db=20 * math.log10(max(float(np.max(np.abs(first.dc))), 1e-150) / math.sqrt(power)),
        quiet_rms_db=db(quiet_power / reference) if quiet_power else None,
        quiet_seconds=float(quiet.sum()) * hop / info.sample_rate,
        silent_frames=silent,
        lines=lines,
        grid=grid,
        spectra=spectra,
        floor=floor,
        quiet_floor=quiet_floor,
        coherence={
            "candidates": len(cands),
            "k_max": n // MIN_SPACING_BINS,
            "frames": result.frames,
            "quiet_frames": result.quiet_frames,
            "neighbour_correlation": result.rho,
            "false_alarm": t.grid_false_alarm,
        },
        pattern_lsb=pattern,
        coherence_seconds=spent,
        strip_rms_db=10 * np.log10(np.maximum(result.strip_rms, 1e-30) / reference),
        clips=make_clips(info, index, frame_power, hop, t.clip_seconds) if media else [],
        notes=notes,
    )
