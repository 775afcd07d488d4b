"""Tonal lines: the power of grid bins of periodic probe responses (docs/method.md).

Every probe is periodic (silence and DC with period one sample at ``fs0``, the multitone with
``M``), so in steady state every stage output is periodic and each line is one DFT bin: a
multiple ``m · g`` of the grid spacing (the lowest stage input rate seen so far). A line's
level is that bin's one-sided power (RMS², the Nyquist bin not doubled), averaged over output
channels, relative to the stage's signal level. Nothing leaks, so no main lobe is summed and a
−100 dB line next to a −10 dB one is read as exactly as either.

For the multitone (silence subtracted) the grid bins of a linear stage are zero to float
rounding: a line there comes from a nonlinearity (rectified offsets replicated by later
upsamplers). Such a stage also spreads distortion over all even bins, so a multitone line must
stand ``min_prominence_db`` above the mean of the even non-grid bins between its neighbouring
grid lines (the distortion floor); for silence and DC the floor is what is not periodic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOOR_DB = -200.0
"""Levels are clipped here: what lies below is not a number anyone acts on."""


@dataclass(frozen=True)
class LineSettings:
    """How tonal lines are told from the floor (see ``configs/default.toml``)."""

    min_level_db: float = -110.0
    min_prominence_db: float = 10.0


@dataclass
class Line:
    """A tonal line in a stage's output spectrum (one grid bin)."""

    freq_hz: float
    level_db: float
    prominence_db: float
    probe: str
    on_grid: bool
    origin: str = ""
    """The stage that introduced the line (filled in by :mod:`upsampcheck.measure.attribution`)."""


def to_db(power: float | np.ndarray) -> float | np.ndarray:
    """``10 log10(power)``, clipped below at :data:`FLOOR_DB` (in float64, whatever the input's
    precision: a float32 spectrogram's zeros are clipped, not logged)."""
    return np.maximum(10 * np.log10(np.maximum(power, 1e-300, dtype=np.float64)), FLOOR_DB)


ROUNDOFF_FLOOR_DB = -140.0
"""Floors are taken no lower than this, re the signal level: float32 round-off lies below."""


def grid_lines(
    power: np.ndarray,
    bin_hz: float,
    grid: int,
    reference_power: float,
    probe: str,
    floor: np.ndarray | float,
    settings: LineSettings = LineSettings(),
) -> list[Line]:
    """Lines on the grid bins ``m · grid`` of a one-sided per-bin ``power`` spectrum.

    ``floor`` is the power per bin of what is not a line near each bin (an array like ``power``,
    or one value); a line needs ``min_level_db`` over ``reference_power`` and
    ``min_prominence_db`` over the floor.
    """
    lines = []
    floors = np.broadcast_to(np.asarray(floor, dtype=float), power.shape)
    # A floor of float32 round-off is no number (it changes with the thread count): the
    # prominence is measured over ROUNDOFF_FLOOR_DB at the least.
    floors = np.maximum(floors, reference_power * 10 ** (ROUNDOFF_FLOOR_DB / 10))
    for q in range(grid, len(power), grid):
        level = float(to_db(power[q] / reference_power))
        prominence = float(min(to_db(power[q]) - to_db(floors[q]), -FLOOR_DB))
        if level >= settings.min_level_db and prominence >= settings.min_prominence_db:
            lines.append(Line(q * bin_hz, level, prominence, probe, True))
    return lines


def distortion_floor(power: np.ndarray, grid: int) -> np.ndarray:
    """For each bin, the mean power of the even non-grid bins within half a grid spacing of it:
    the floor a multitone line is judged against (zero where there are none)."""
    n = len(power)
    even = np.zeros(n)
    even[::2] = power[::2]
    counts = np.zeros(n)
    counts[::2] = 1.0
    if grid > 0:
        even[::grid] = 0.0
        counts[::grid] = 0.0
    reach = max(1, grid // 2)
    total, count = (np.concatenate([[0.0], np.cumsum(a)]) for a in (even, counts))
    lo = np.clip(np.arange(n) - reach, 0, n)
    hi = np.clip(np.arange(n) + reach + 1, 0, n)
    return (total[hi] - total[lo]) / np.maximum(count[hi] - count[lo], 1.0)
