"""What ``upsampcheck audio`` measures on one file: its lines and the file's numbers.

Plain data (imports only :mod:`..measure` and :mod:`..subjects`), shared by the analysis
(:mod:`.analyse`) and the report (:mod:`upsampcheck.report.audio`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..measure import longterm, stationary
from ..measure.grid import Grid
from ..outputs.clips import Clip
from ..subjects.audio import AudioInfo

TEST_TONE_DB = -3.0
"""A steady locked line holding at least half the file's power is probably a test tone (the
file is the tone): it is named as such and left out of the tonal judgement."""
LSB = {"PCM_S8": 2.0**-7, "PCM_U8": 2.0**-7, "PCM_16": 2.0**-15, "PCM_24": 2.0**-23}
"""One quantisation step (full scale ±1) of the integer sample formats."""


def db(power: float) -> float:
    """``10 log10(power)``, −3000 for nothing."""
    return 10 * math.log10(max(power, 1e-300))


@dataclass
class Lock:
    """A line's phase coherence to the sample clock (:mod:`..measure.coherence`).

    ``fraction``: ``(p, q)``, the line is at ``p·fs/q``; ``resultant`` ``R``; ``z`` the
    Rayleigh statistic; ``false_alarm`` its family-wise false alarm (``P / weight``);
    ``frames`` ``N``; ``level_dbfs`` the coherent power in dB re full scale (mean square);
    ``quiet_level_db`` the coherent power in the quiet frames re the file's power;
    ``program_correlation`` of ``|Y_j|`` with the frames' RMS; ``follows_program`` when that
    is at least 0.5, else the line is steady; ``amplitude_lsb`` its amplitude in quantisation
    steps (integer formats)."""

    fraction: tuple[int, int]
    resultant: float
    z: float
    false_alarm: float
    frames: int
    level_dbfs: float
    quiet_level_db: float | None
    quiet_level_dbfs: float | None
    program_correlation: float
    follows_program: bool
    amplitude_lsb: float | None
    quiet_amplitude_lsb: float | None
    strip_db: np.ndarray = field(repr=False)


@dataclass
class AudioLine:
    """A line in a file: levels in dB, frequency in Hz.

    ``level_db``: its power relative to the file's mean power (RMS²): the coherent power for
    a locked line, the spectral peak's power otherwise. ``prominence_db``: over the long-term
    floor (None where the program hides it); ``quiet_prominence_db``: over the floor of the
    quiet passages. ``drift_bins``, ``purity``, ``consistency``, ``stationary``: the peak's
    shape in the long-term spectrum (description; ``lock`` decides).
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
    lock: Lock | None = None
    on_grid: bool = False
    harmonic: int | None = None
    stage_rate_hz: float | None = None

    @property
    def locked(self) -> bool:
        return self.lock is not None

    @property
    def probable_test_tone(self) -> bool:
        """Locked, steady and holding at least half the file's power (:data:`TEST_TONE_DB`)."""
        return (
            self.lock is not None
            and not self.lock.follows_program
            and self.level_db >= TEST_TONE_DB
        )


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
    coherence: dict = field(default_factory=dict)
    pattern_lsb: float | None = None
    coherence_seconds: float = field(default=0.0, repr=False)
    """Time spent on the phase coherence (not in report.json: it is not reproducible)."""
    strip_rms_db: np.ndarray | None = field(default=None, repr=False)
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
    def lsb(self) -> float | None:
        """One quantisation step of the file's sample format (None for float and lossy)."""
        return LSB.get(self.info.subtype)

    @property
    def locked_lines(self) -> list[AudioLine]:
        return [line for line in self.lines if line.locked]

    @property
    def stationary_lines(self) -> list[AudioLine]:
        """Lines whose spectral peak keeps its frequency but that are not locked."""
        return [line for line in self.lines if line.stationary and not line.locked]
