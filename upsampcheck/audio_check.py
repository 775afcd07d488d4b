"""``upsampcheck audio``: find the upsampling grid in audio a model actually produced.

For each file: two streamed passes (:mod:`.subjects.audio`): the first measures every
frame's power (so the quiet passages are known), the second accumulates the long-term, segment
and quiet spectra (:mod:`.measure.longterm`). Peaks above the program floor become candidate
lines; those that keep their frequency (:mod:`.measure.stationary`) are the stationary lines,
and the grid ``fs / K`` that explains them (:mod:`.measure.grid`) says at which rate the stage
that made them runs. Findings and the report are in :mod:`.report.audio`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import AudioThresholds
from .errors import UsageError
from .measure import longterm, stationary
from .measure.grid import Grid, infer_grid
from .outputs.clips import Clip
from .subjects.audio import AudioInfo, frames, open_info, read_excerpt, scan

MIN_PURITY = 0.6
"""A line's main lobe holds at least this share of the power above the floor within ±3 lobes."""
MIN_SPACING_BINS = 16
"""The finest grid considered: lines 16 bins apart still have clear floor between lobes."""


@dataclass
class AudioLine:
    """A line found in a file (stationary or not): levels in dB, frequency in Hz.

    ``level_db``: its power relative to the file's mean power (RMS²). ``prominence_db``: over
    the long-term floor (None where the program hides it); ``quiet_prominence_db``: over the
    floor of the quiet passages (None where they hide it or there are none).
    """

    freq_hz: float
    level_db: float
    prominence_db: float | None
    quiet_prominence_db: float | None
    measured_in: str
    drift_bins: float
    purity: float
    consistency: stationary.Consistency
    stationary: bool
    on_grid: bool = False
    harmonic: int | None = None
    stage_rate_hz: float | None = None


@dataclass
class FileResult:
    """Everything measured on one file."""

    label: str
    info: AudioInfo
    n_fft: int
    rms_dbfs: float
    peak_dbfs: float
    dc_db: float
    quiet_rms_db: float | None
    quiet_seconds: float
    silent_frames: int
    lines: list[AudioLine]
    grid: Grid | None
    spectra: longterm.Spectra = field(repr=False)
    floor: np.ndarray = field(repr=False)
    quiet_floor: np.ndarray | None = field(repr=False)
    clips: list[Clip] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def bin_hz(self) -> float:
        return self.info.sample_rate / self.n_fft

    @property
    def reference_power(self) -> float:
        """The file's mean power per sample in the long-term spectrum (frame means removed)."""
        return float(self.spectra.average.sum())

    @property
    def stationary_lines(self) -> list[AudioLine]:
        return [line for line in self.lines if line.stationary]


def db(power: float) -> float:
    return 10 * math.log10(max(power, 1e-300))


def candidates(spectrum: np.ndarray, floor: np.ndarray, enbw: float, min_db: float) -> dict:
    """``{peak bin: Shape}`` for the peaks that stand ``min_db`` above ``floor``."""
    found = {}
    for k in stationary.local_peaks(spectrum):
        if spectrum[k] < 2 * floor[k]:  # not even 3 dB at the peak: cannot reach min_db
            continue
        measured = stationary.shape(spectrum, floor, int(k), enbw)
        if measured.prominence_db >= min_db:
            found[int(k)] = measured
    return found


def measure_lines(
    result_spectra: longterm.Spectra,
    floor: np.ndarray,
    quiet_floor: np.ndarray | None,
    reference: float,
    t: AudioThresholds,
) -> list[AudioLine]:
    """Candidate lines from the long-term and the quiet spectrum, each judged for
    stationarity over the segments and the two halves' quiet passages."""
    spectra = result_spectra
    enbw = longterm.enbw_bins(spectra.n_fft)
    found: dict[int, tuple[str, stationary.Shape]] = {
        k: ("all", s)
        for k, s in candidates(spectra.average, floor, enbw, t.line_prominence_db).items()
    }
    if spectra.quiet is not None:
        quiet = candidates(spectra.quiet, quiet_floor, enbw, t.line_prominence_db)
        for k, s in quiet.items():
            near = [j for j in found if abs(j - k) <= 2]
            if not near:
                found[k] = ("quiet", s)
            elif s.prominence_db > found[near[0]][1].prominence_db:
                del found[near[0]]
                found[k] = ("quiet", s)
    looks = [*spectra.segments[spectra.segment_frames > 0], *spectra.quiet_halves]
    last = len(spectra.average) - 1
    lines = []
    for k, (where, measured) in sorted(found.items()):
        level = db(measured.power / reference)
        if level < t.line_floor_db:
            continue
        lobe = np.clip(np.arange(k - longterm.LOBE, k + longterm.LOBE + 1), 0, last)
        floors = [stationary.floor_at(look, lobe) for look in looks]
        agree = stationary.consistency(looks, floors, k, measured.centre, measured.power, enbw)
        in_all = stationary.shape(spectra.average, floor, k, enbw)
        in_quiet = (
            stationary.shape(spectra.quiet, quiet_floor, k, enbw)
            if spectra.quiet is not None
            else None
        )
        steady = (
            measured.drift_bins <= t.drift_bins
            and measured.purity >= MIN_PURITY
            and agree.fraction >= t.min_consistency
            and agree.seen >= min(2, len(looks))
        )
        lines.append(
            AudioLine(
                freq_hz=measured.centre * spectra.bin_hz,
                level_db=level,
                prominence_db=_visible(in_all, t),
                quiet_prominence_db=_visible(in_quiet, t),
                measured_in=where,
                drift_bins=measured.drift_bins,
                purity=measured.purity,
                consistency=agree,
                stationary=steady,
            )
        )
    return sorted(lines, key=lambda line: -line.level_db)


def _visible(measured: stationary.Shape | None, t: AudioThresholds) -> float | None:
    """A prominence worth printing: None where the line does not stand above that floor."""
    if measured is None or not math.isfinite(measured.prominence_db):
        return None
    return measured.prominence_db if measured.prominence_db > 0 else None


def place_on_grid(lines: list[AudioLine], grid: Grid | None) -> None:
    """Mark the stationary lines the grid explains, their harmonic number and the highest
    candidate stage input rate they lie on."""
    if grid is None:
        return
    for line in lines:
        if line.stationary and grid.explains(line.freq_hz):
            line.on_grid = True
            line.harmonic = round(line.freq_hz / grid.spacing_hz)
            line.stage_rate_hz = grid.coarsest_rate(line.freq_hz)


def clip_windows(frame_power: np.ndarray, width: int) -> tuple[int, int | None]:
    """(loudest, quietest) first frames of ``width`` consecutive frames by mean power; the
    quietest skips windows of pure digital silence (None when every window is silent)."""
    width = max(1, min(width, len(frame_power)))
    sums = np.convolve(frame_power, np.ones(width), mode="valid")
    loud = int(np.argmax(sums))
    sounding = np.flatnonzero(sums > 0)
    quiet = int(sounding[np.argmin(sums[sounding])]) if len(sounding) else None
    return loud, quiet


def make_clips(info: AudioInfo, index: int, frame_power: np.ndarray, hop: int, seconds: float):
    """An excerpt of the loudest and of the quietest stretch, each at true level and
    normalised (:func:`~.outputs.clips.normalised`)."""
    from .outputs.clips import normalised

    length = min(info.frames, max(1, round(seconds * info.sample_rate)))
    loud, quiet = clip_windows(frame_power, math.ceil(length / hop))
    clips = []
    for kind, first, title in (
        ("excerpt", loud, "the loudest stretch"),
        ("quiet", quiet, "the quietest stretch"),
    ):
        if first is None:
            continue
        start = min(first * hop, info.frames - length)
        samples = read_excerpt(info, start, length)
        what = f"{info.path.name}: {title} ({start / info.sample_rate:.1f} s on)"
        clip = Clip(f"file{index}_{kind}", what, samples, info.sample_rate)
        clips += [clip, normalised(clip)]
    return clips


def analyse_file(
    path: Path, t: AudioThresholds, index: int = 0, progress: Callable[[str], None] | None = None
) -> FileResult:
    """Measure one file (see the module docstring)."""
    step = progress or (lambda _text: None)
    info = open_info(path)
    notes = []
    n = longterm.frame_length(info.sample_rate, info.frames)
    count = longterm.frame_count(info.frames, n)
    if count < 2:
        raise UsageError(
            f"{path}: {info.duration_s:.3f} s is too short to analyse; "
            f"give at least {3 * n / 2 / info.sample_rate:.2f} s"
        )
    standard = longterm.frame_length(info.sample_rate, 1 << 40)
    if n < standard:
        notes.append(
            f"{path}: short file; analysed with {n}-sample frames ({info.sample_rate / n:.1f} Hz "
            f"bins) instead of {standard}"
        )
    if info.lossy:
        notes.append(
            f"{path}: lossy format ({info.format}/{info.subtype}); the codec's band limit and "
            "quantisation can hide faint lines: check the file the model wrote"
        )
    hop = n // 2
    step(f"{path.name}: reading (pass 1 of 2)")
    first = scan(info, n, hop)
    quiet = longterm.quiet_frames(first.frame_power, t.quiet_fraction)
    silent = int(np.sum(first.frame_power == 0))
    if silent:
        notes.append(f"{path}: {silent} of {count} frames are digital silence (left out of quiet)")
    segments = longterm.segment_count(count)
    accumulator = longterm.SpectrumAccumulator(n, info.sample_rate, count, quiet, segments)
    step(f"{path.name}: spectra (pass 2 of 2)")
    for batch in frames(info, n, hop):
        accumulator.add(batch)
    spectra = accumulator.result()
    reference = float(spectra.average.sum())
    if reference <= 0:
        raise UsageError(f"{path}: digital silence throughout (or a constant); nothing to analyse")
    floor = stationary.floor_at(spectra.average)
    quiet_floor = stationary.floor_at(spectra.quiet) if spectra.quiet is not None else None
    step(f"{path.name}: lines and grid")
    lines = measure_lines(spectra, floor, quiet_floor, reference, t)
    bin_hz = info.sample_rate / n
    grid = infer_grid(
        [line.freq_hz for line in lines if line.stationary],
        info.sample_rate,
        tolerance_hz=t.grid_tolerance_bins * bin_hz,
        min_spacing_hz=MIN_SPACING_BINS * bin_hz,
        alpha=t.grid_false_alarm,
    )
    place_on_grid(lines, grid)
    power = max(first.power, 1e-300)
    quiet_power = float(first.frame_power[quiet].mean()) if quiet.any() else None
    return FileResult(
        label=str(path),
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
        clips=make_clips(info, index, first.frame_power, hop, t.clip_seconds),
        notes=notes,
    )


def check_audio(
    paths: list[Path],
    thresholds: AudioThresholds,
    progress: Callable[[str], None] | None = None,
):
    """Analyse every file and return one :class:`~.report.audio.AudioReport` for all."""
    from .report.audio import AudioReport, file_findings

    if not paths:
        raise UsageError("give at least one audio FILE")
    for path in paths:  # refuse a bad file before analysing the good ones
        open_info(path)
    results = [analyse_file(p, thresholds, i, progress) for i, p in enumerate(paths)]
    findings = [f for r in results for f in file_findings(r, thresholds)]
    notes = [note for r in results for note in r.notes]
    name = results[0].label if len(results) == 1 else f"{len(results)} files"
    subject = {"kind": "audio", "name": name, "files": [r.label for r in results]}
    if len(results) == 1:
        subject["file"] = results[0].label  # where CI annotations point
    return AudioReport(subject, thresholds, results, findings, notes)
