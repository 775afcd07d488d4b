"""A file's lines: the ones locked to the sample clock (:mod:`..measure.coherence`), and the
peaks of the long-term spectrum that are not (:mod:`..measure.stationary`, description).

A candidate ``p·fs/q`` is a **locked line** when its phase coherence passes the family-wise
test, unless a stronger stationary component 1 to 32 bins away could have leaked that much
coherent power into it (:func:`~.coherence.leaks`), or a stronger locked line lies within
:data:`RESOLUTION_BINS` (one line seen twice). Lines whose coherent power is below
``line-floor-db`` re the file and that do not stand out in the quiet passages are dropped.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import AudioThresholds
from ..measure import coherence, longterm, stationary
from ..measure.grid import Grid
from .results import AudioLine, Lock, db

MIN_PURITY = 0.6
"""A line's main lobe holds at least this share of the power above the floor within ±3 lobes."""
RESOLUTION_BINS = 2.0
"""Locked candidates closer than this (the coherence window's main lobe) are one line."""
FOLLOWS_PROGRAM = 0.5
"""A line whose per-frame magnitude correlates at least this with the frames' RMS follows
the program (a gain pattern); below, it is steady (a bias replica)."""


def spectral_candidates(
    spectrum: np.ndarray, floor: np.ndarray, enbw: float, min_db: float
) -> dict[int, stationary.Shape]:
    """``{peak bin: Shape}`` for the peaks that stand ``min_db`` above ``floor``."""
    found = {}
    for k in stationary.local_peaks(spectrum):
        if spectrum[k] < 2 * floor[k]:  # not even 3 dB at the peak: cannot reach min_db
            continue
        measured = stationary.shape(spectrum, floor, int(k), enbw)
        if measured.prominence_db >= min_db:
            found[int(k)] = measured
    return found


def _visible(measured: stationary.Shape | None) -> float | None:
    """A prominence worth printing: None where the line does not stand above that floor."""
    if measured is None or not math.isfinite(measured.prominence_db):
        return None
    return measured.prominence_db if measured.prominence_db > 0 else None


def describe(
    spectra: longterm.Spectra,
    floor: np.ndarray,
    quiet_floor: np.ndarray | None,
    k: int,
    measured: stationary.Shape,
    t: AudioThresholds,
) -> dict:
    """The peak at bin ``k`` in the long-term spectrum: prominences, drift, purity,
    consistency over the segments and the quiet halves, and the stationarity verdict."""
    enbw = longterm.enbw_bins(spectra.n_fft)
    last = len(spectra.average) - 1
    looks = [*spectra.segments[spectra.segment_frames > 0], *spectra.quiet_halves]
    lobe = np.clip(np.arange(k - longterm.LOBE, k + longterm.LOBE + 1), 0, last)
    floors = [stationary.floor_at(look, lobe) for look in looks]
    if measured.power > 0:
        agree = stationary.consistency(looks, floors, k, measured.centre, measured.power, enbw)
    else:  # no peak over the floor there: hidden everywhere
        agree = stationary.Consistency(0, len(looks), 0, 0)
    in_all = stationary.shape(spectra.average, floor, k, enbw)
    quiet = spectra.quiet
    in_quiet = stationary.shape(quiet, quiet_floor, k, enbw) if quiet is not None else None
    steady = (
        measured.drift_bins <= t.drift_bins
        and measured.purity >= MIN_PURITY
        and agree.fraction >= t.min_consistency
        and agree.seen >= min(2, len(looks))
    )
    return {
        "prominence_db": _visible(in_all),
        "quiet_prominence_db": _visible(in_quiet),
        "drift_bins": measured.drift_bins,
        "purity": measured.purity,
        "consistency": agree,
        "stationary": steady,
    }


def spectral_lines(
    spectra: longterm.Spectra,
    floor: np.ndarray,
    quiet_floor: np.ndarray | None,
    reference: float,
    t: AudioThresholds,
) -> list[AudioLine]:
    """Peaks of the long-term and the quiet spectrum, each judged for stationarity."""
    enbw = longterm.enbw_bins(spectra.n_fft)
    found: dict[int, tuple[str, stationary.Shape]] = {
        k: ("all", s)
        for k, s in spectral_candidates(spectra.average, floor, enbw, t.line_prominence_db).items()
    }
    if spectra.quiet is not None:
        quiet = spectral_candidates(spectra.quiet, quiet_floor, enbw, t.line_prominence_db)
        for k, s in quiet.items():
            near = [j for j in found if abs(j - k) <= 2]
            if not near:
                found[k] = ("quiet", s)
            elif s.prominence_db > found[near[0]][1].prominence_db:
                del found[near[0]]
                found[k] = ("quiet", s)
    lines = []
    for k, (where, measured) in sorted(found.items()):
        level = db(measured.power / reference)
        if level < t.line_floor_db:
            continue
        about = describe(spectra, floor, quiet_floor, k, measured, t)
        lines.append(AudioLine(measured.centre * spectra.bin_hz, level, measured_in=where, **about))
    return sorted(lines, key=lambda line: -line.level_db)


def lock_of(
    coh: coherence.Coherence, i: int, reference: float, lsb: float | None, strip_ref: float
) -> Lock:
    """The :class:`Lock` numbers of candidate ``i``."""
    cands = coh.candidates
    p, q = int(cands.num[i]), int(cands.den[i])
    power = float(coh.power[i])
    quiet = float(coh.quiet_power[i]) if coh.quiet_power is not None else None
    peak = 1.0 if 2 * p == q else 2.0  # amplitude² / power

    def in_lsb(value: float | None) -> float | None:
        return None if lsb is None or value is None else math.sqrt(peak * value) / lsb

    correlation = float(coh.program_correlation[i])
    return Lock(
        fraction=(p, q),
        resultant=float(coh.resultant[i]),
        z=float(coh.z[i]),
        false_alarm=float(coh.false_alarm[i]),
        frames=int(coh.phased[i]),
        level_dbfs=db(power),
        quiet_level_db=None if quiet is None else db(quiet / reference),
        quiet_level_dbfs=None if quiet is None else db(quiet),
        program_correlation=correlation,
        follows_program=correlation >= FOLLOWS_PROGRAM,
        amplitude_lsb=in_lsb(power),
        quiet_amplitude_lsb=in_lsb(quiet),
        strip_db=10 * np.log10(np.maximum(coh.strip[i].astype(float), 1e-30) / strip_ref),
    )


def locked_lines(
    coh: coherence.Coherence,
    spectra: longterm.Spectra,
    floor: np.ndarray,
    quiet_floor: np.ndarray | None,
    reference: float,
    lsb: float | None,
    t: AudioThresholds,
) -> list[AudioLine]:
    """The candidates locked to the sample clock (see the module docstring)."""
    n = spectra.n_fft
    freqs = coh.candidates.freqs_hz
    passed = np.flatnonzero((coh.false_alarm <= t.grid_false_alarm) & (coh.power > 0))
    if not len(passed):
        return []
    peaks = stationary.local_peaks(spectra.average)
    env = coherence.leak_envelope(2 * n)  # the coherence frames are 2n long
    enbw = longterm.enbw_bins(n)
    bin_hz = spectra.bin_hz
    chosen: list[int] = []
    for i in passed[np.argsort(-coh.power[passed])]:
        if any(abs(freqs[i] - freqs[j]) < RESOLUTION_BINS * bin_hz for j in chosen):
            continue
        if coherence.leaks(freqs[i], coh.power[i], spectra.average, peaks, bin_hz, enbw, env):
            continue
        chosen.append(int(i))
    last = len(spectra.average) - 1
    lines = []
    for i in chosen:
        k = min(int(round(freqs[i] / bin_hz)), last)
        lock = lock_of(coh, i, reference, lsb, reference)
        power = float(coh.power[i])
        level = db(power / reference)
        quiet_prominence = None
        if coh.quiet_power is not None and quiet_floor is not None:
            quiet_prominence = db(coh.quiet_power[i] / (quiet_floor[k] * enbw))
        if level < t.line_floor_db and (quiet_prominence or -math.inf) < t.line_prominence_db:
            continue
        where, measured = "all", stationary.shape(spectra.average, floor, k, enbw)
        if spectra.quiet is not None:
            in_quiet = stationary.shape(spectra.quiet, quiet_floor, k, enbw)
            if in_quiet.prominence_db > measured.prominence_db:
                where, measured = "quiet", in_quiet
        about = describe(spectra, floor, quiet_floor, k, measured, t)
        about["prominence_db"] = db(power / (floor[k] * enbw))
        about["quiet_prominence_db"] = quiet_prominence
        lines.append(AudioLine(float(freqs[i]), level, measured_in=where, lock=lock, **about))
    return sorted(lines, key=lambda line: -line.level_db)


def merge(locked: list[AudioLine], spectral: list[AudioLine], bin_hz: float) -> list[AudioLine]:
    """The locked lines, then the spectral peaks that are not one of them (within a lobe)."""
    reach = longterm.LOBE * bin_hz
    rest = [s for s in spectral if all(abs(s.freq_hz - ln.freq_hz) > reach for ln in locked)]
    return [*locked, *rest]


def place_on_grid(lines: list[AudioLine], grid: Grid | None) -> None:
    """Mark the locked lines the grid explains, their harmonic number and the highest
    candidate stage input rate they lie on."""
    if grid is None:
        return
    for line in lines:
        if line.locked and grid.explains(line.freq_hz):
            line.on_grid = True
            line.harmonic = round(line.freq_hz / grid.spacing_hz)
            line.stage_rate_hz = grid.coarsest_rate(line.freq_hz)
