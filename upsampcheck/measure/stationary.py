"""Lines in a long-term spectrum: the floor that follows the program, the peaks above it, each
peak's shape, and whether it keeps its frequency across the file (stationarity).

Spectra are those of :mod:`upsampcheck.measure.longterm`: power per bin, a line of power ``P``
spread over its main lobe (±:data:`~.longterm.LOBE` bins) with the window's shape ``|W(ν)|²``.

* **Floor**: the 40th percentile of the bins' dB values over ±48 bins (8 main lobes): it
  follows a program's slopes and formants, and a line (13 bins) cannot lift it.
* **Line power** ``P = Σ_lobe (S − F)``, **frequency** the centroid of ``S − F`` over the lobe,
  **prominence** ``10 log10(P / (F · ENBW))``: the line's power over the floor's power in one
  resolution bandwidth (what the eye reads as the peak's height above the floor).
* **Drift**: a line whose frequency wanders over ``f(t)`` has the window's lobe convolved with
  the distribution of ``f(t)``, so its spectral variance is ``σ²_W + Var f``. The excess
  ``sqrt(σ² − σ²_W)`` is the line's RMS frequency drift in bins; ``σ²_W`` is computed from the
  Kaiser transform at the same offset between bins. A 2 % vibrato on a 220 Hz tone drifts 1.2
  bins at 2.69 Hz bins; an upsampling line, locked to the sample clock, 0. The figure is
  exact while the swing stays inside the ±6-bin lobe; a wider one reads lower (only the lobe
  is measured) but still far above any threshold, and its skirt fails the purity test.
* **Purity**: the lobe's share of the power above the floor within ±3 lobes; a line is pure
  (about 1), the skirt of a vibrato or a formant is not.
* **Consistency** across segments (and the quiet passages): in each, the line is *seen* (within
  a bin of its frequency), *hidden* (the program there is too loud to show it), *moved*, or
  *absent* (it would show, and does not: a note held for a while, not a line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .longterm import KAISER_BETA, LOBE

FLOOR_REACH = 8 * LOBE
FLOOR_PERCENTILE = 40.0
PURITY_REACH = 3 * LOBE
VISIBLE_DB = 10.0
"""A segment should show a line it would stand this far above (else it is hidden there)."""
SEEN_DB = 3.0
"""A line counts as seen in a segment when it stands at least this far above its floor."""
TINY = 1e-300


def _padded(x: np.ndarray, reach: int) -> np.ndarray:
    """``x`` mirrored about DC and the Nyquist bin, ``reach`` bins each side (a one-sided
    spectrum continues that way)."""
    return np.pad(x, reach, mode="reflect")


def floor_at(spectrum: np.ndarray, bins: np.ndarray | None = None) -> np.ndarray:
    """The program floor (power per bin) at ``bins`` (all bins when None)."""
    db = 10 * np.log10(np.maximum(spectrum, TINY))
    windows = np.lib.stride_tricks.sliding_window_view(
        _padded(db, FLOOR_REACH), 2 * FLOOR_REACH + 1
    )
    if bins is not None:
        windows = windows[np.asarray(bins, dtype=int)]
    return 10 ** (np.percentile(windows, FLOOR_PERCENTILE, axis=-1) / 10)


def local_peaks(spectrum: np.ndarray) -> np.ndarray:
    """Bins above ``2 · LOBE`` (clear of DC) that hold the maximum within ±``LOBE``."""
    windows = np.lib.stride_tricks.sliding_window_view(_padded(spectrum, LOBE), 2 * LOBE + 1)
    peak = spectrum >= windows.max(-1)
    peak[: 2 * LOBE + 1] = False
    return np.flatnonzero(peak)


def kaiser_lobe(offsets: np.ndarray) -> np.ndarray:
    """``|W(ν)|²`` of the Kaiser window (β = :data:`KAISER_BETA`) at ``ν`` bins from a line,
    from its continuous transform ``sinh(√(β² − π²ν²)) / √(β² − π²ν²)``, normalised to 1 at 0."""
    z = KAISER_BETA**2 - (np.pi * np.asarray(offsets, dtype=float)) ** 2
    root = np.sqrt(np.abs(z))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(z > 0, np.sinh(root) / root, np.sin(root) / root)
    value = np.where(root < 1e-9, 1.0, value)
    return (value / (np.sinh(KAISER_BETA) / KAISER_BETA)) ** 2


@dataclass(frozen=True)
class Shape:
    """A peak measured against the floor: ``centre`` in bins (fractional), ``power`` above the
    floor, ``prominence_db``, ``drift_bins`` (RMS frequency drift) and ``purity``."""

    centre: float
    power: float
    prominence_db: float
    drift_bins: float
    purity: float


def shape(spectrum: np.ndarray, floor: np.ndarray, k: int, enbw: float) -> Shape:
    """Measure the peak at bin ``k`` of ``spectrum`` over ``floor`` (both full arrays)."""
    last = len(spectrum) - 1
    reach = PURITY_REACH
    s, f = _padded(spectrum, reach), _padded(floor, reach)
    centre_index = k + reach
    bins = np.arange(k - LOBE, k + LOBE + 1)
    excess = s[centre_index - LOBE : centre_index + LOBE + 1] - f[bins + reach]
    if k + LOBE > last:  # near the Nyquist the one-sided spectrum already holds the mirror
        power = float(np.sum(spectrum[k - LOBE :] - floor[k - LOBE :]))
    else:
        power = float(excess.sum())
    weights = np.maximum(excess, 0.0)
    total = weights.sum()
    if total <= 0 or power <= 0:
        return Shape(float(k), max(power, 0.0), -math.inf, math.inf, 0.0)
    centre = float((bins * weights).sum() / total)
    spread2 = float(((bins - centre) ** 2 * weights).sum() / total)
    lobe = kaiser_lobe(bins - centre)
    own2 = float(((bins - centre) ** 2 * lobe).sum() / lobe.sum())
    drift = math.sqrt(max(spread2 - own2, 0.0))
    wide = (
        s[centre_index - reach : centre_index + reach + 1]
        - f[centre_index - reach : centre_index + reach + 1]
    )
    purity = float(total / max(np.maximum(wide, 0.0).sum(), TINY))
    if k + LOBE > last:
        centre = min(centre, float(last))
    prominence = 10 * math.log10(power / max(float(floor[k]) * enbw, TINY))
    return Shape(centre, power, prominence, drift, purity)


@dataclass(frozen=True)
class Consistency:
    """How a line fared in each segment: counts of seen / hidden / moved / absent."""

    seen: int
    hidden: int
    moved: int
    absent: int

    @property
    def fraction(self) -> float:
        """Share of segments that agree with a stationary line (seen there, or hidden)."""
        total = self.seen + self.hidden + self.moved + self.absent
        return (self.seen + self.hidden) / total if total else 0.0


def consistency(
    spectra: list[np.ndarray],
    floors: list[np.ndarray],
    k: int,
    centre: float,
    power: float,
    enbw: float,
    tolerance_bins: float = 1.0,
) -> Consistency:
    """Check a line of ``power`` at bin ``centre`` (peak bin ``k``) in each of ``spectra``
    (``floors[i]``: the floor of ``spectra[i]`` at bins ``k - LOBE .. k + LOBE``)."""
    seen = hidden = moved = absent = 0
    bins = np.arange(k - LOBE, k + LOBE + 1)
    last = len(spectra[0]) - 1 if spectra else 0
    inside = (bins >= 0) & (bins <= last)
    for spectrum, floor in zip(spectra, floors, strict=True):
        base = float(floor[LOBE])
        if 10 * math.log10(power / max(base * enbw, TINY)) < VISIBLE_DB:
            hidden += 1
            continue
        excess = spectrum[bins[inside]] - floor[inside]
        measured = float(excess.sum())
        weights = np.maximum(excess, 0.0)
        if measured <= 0 or 10 * math.log10(measured / max(base * enbw, TINY)) < SEEN_DB:
            absent += 1
            continue
        there = float((bins[inside] * weights).sum() / weights.sum())
        if abs(there - centre) <= tolerance_bins:
            seen += 1
        else:
            moved += 1
    return Consistency(seen, hidden, moved, absent)
