"""Test signals for ``upsampcheck audio``, made in the test (no recordings, no downloads).

* :func:`speech`: a glottal pulse train whose pitch glides and wobbles (90-220 Hz), band-
  limited pulses at exact fractional times, through three formant resonators whose
  frequencies move between vowel targets every syllable, with unvoiced (fricative) bursts,
  syllable envelopes, pauses between phrases, and a faint breath/room noise under it all.
* :func:`grid_lines`: stationary cosines at ``m · fs / K``, each at a given level relative to
  a reference RMS.
* :func:`vibrato_tone`: ``H`` harmonics of ``f0`` whose pitch is modulated by ``depth`` at a
  vibrato rate that itself wanders.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]]
)
"""(F1, F2, F3) in Hz for a, i, u, e, o."""


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def pulse_train(f0: np.ndarray, fs: float, taps: int = 16) -> np.ndarray:
    """Band-limited pulses (Hann-windowed sinc, cut-off 0.45 fs) at the instants where the
    phase ``∫ f0`` crosses an integer; ``f0``: per-sample pitch in Hz."""
    phase = np.cumsum(f0) / fs
    n = len(f0)
    crossings = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    out = np.zeros(n + 2 * taps)
    offsets = np.arange(-taps, taps + 1)
    for i in crossings:  # exact crossing time between samples i and i + 1
        frac = (np.ceil(phase[i]) - phase[i]) / (phase[i + 1] - phase[i])
        t = offsets - frac
        kernel = 0.9 * np.sinc(0.9 * t) * (0.5 + 0.5 * np.cos(np.pi * t / (taps + 1)))
        out[i + offsets + taps] += kernel
    return out[taps : taps + n]


def formant_filter(x: np.ndarray, tracks: np.ndarray, fs: float, block: int) -> np.ndarray:
    """Three resonators in series (bandwidths 80, 120, 160 Hz) whose centre frequencies
    ``tracks: (blocks, 3)`` change every ``block`` samples, state carried across."""
    y = x.copy()
    for j, bandwidth in enumerate((80.0, 120.0, 160.0)):
        state = np.zeros(2)
        out = np.empty_like(y)
        r = np.exp(-np.pi * bandwidth / fs)
        for b in range(len(tracks)):
            seg = slice(b * block, (b + 1) * block)
            theta = 2 * np.pi * tracks[b, j] / fs
            a = [1.0, -2 * r * np.cos(theta), r * r]
            gain = 1 - 2 * r * np.cos(theta) + r * r
            out[seg], state = lfilter([gain], a, y[seg], zi=state)
        y = out
    return y


def speech(
    fs: float,
    seconds: float,
    seed: int = 0,
    noise_db: float = -60.0,
    syllable_hz: float = 4.0,
    block: int | None = None,
) -> np.ndarray:
    """A speech-like signal of RMS 0.1 (−20 dBFS), see the module docstring. ``noise_db``:
    the breath/room noise's RMS relative to the speech. Syllables (and the voiced/unvoiced
    choice) come exactly every ``1/syllable_hz`` s: at 4 Hz that is a clock locked to
    ``fs`` (``fs/2000`` at 8 kHz), whose harmonics are exact multiples ``p·fs/q``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    walk = np.cumsum(rng.standard_normal(n)) / np.sqrt(fs) * 0.4
    f0 = 140 * np.exp(0.25 * np.sin(2 * np.pi * 0.23 * t + 1.0) + 0.1 * walk)
    f0 *= 1 + 0.01 * np.sin(2 * np.pi * 5.1 * t)
    f0 = np.clip(f0, 90, 220)
    voiced = lfilter([1.0], [1.0, -0.95], pulse_train(f0, fs))  # glottal roll-off
    block = int(0.01 * fs) if block is None else block
    blocks = -(-n // block)
    syllable = 0.25 / 0.01  # blocks per syllable
    targets = VOWELS[rng.integers(0, len(VOWELS), int(blocks / syllable) + 2)]
    position = np.arange(blocks) / syllable
    low = np.floor(position).astype(int)
    mix = (position - low)[:, None]
    tracks = (1 - mix) * targets[low] + mix * targets[low + 1]
    tracks *= 1 + 0.05 * rng.standard_normal((blocks, 1))
    vowels = formant_filter(np.pad(voiced, (0, blocks * block - n)), tracks, fs, block)[:n]
    hiss = lfilter([1.0, -1.0], [1.0], rng.standard_normal(n))  # fricatives: high-passed noise
    syll_phase = (t * syllable_hz) % 1.0
    envelope = np.sin(np.pi * syll_phase) ** 0.5
    syllables = np.floor(t * syllable_hz).astype(int)
    fricative = (rng.random(int(seconds * syllable_hz) + 1)[syllables] < 0.3).astype(float)
    phrase = np.ones(n)
    start = 0.0
    while start < seconds:  # phrases of 1.5-2.5 s, pauses of 0.8-1.2 s
        length = rng.uniform(1.5, 2.5)
        pause = rng.uniform(0.8, 1.2)
        phrase[int((start + length) * fs) : int((start + length + pause) * fs)] = 0.0
        start += length + pause
    ramp = np.hanning(int(0.04 * fs))
    phrase = np.convolve(phrase, ramp / ramp.sum(), mode="same")
    program = (
        envelope
        * phrase
        * ((1 - fricative) * vowels / rms(vowels) + fricative * 0.3 * hiss / rms(hiss))
    )
    program = lfilter([1.0, -1.0], [1.0, -0.99], program)  # no DC, as a microphone gives
    program *= 0.1 / rms(program)
    noise = rng.standard_normal(n) * 0.1 * 10 ** (noise_db / 20)
    return program + noise


def grid_lines(
    fs: float, n: int, factor: int, harmonics: list[int], level_db: float, reference_rms: float
) -> np.ndarray:
    """Cosines at ``m · fs / factor`` for ``m`` in ``harmonics`` (seeded random phases), each
    of power ``level_db`` relative to ``reference_rms²``."""
    rng = np.random.default_rng(1)
    t = np.arange(n) / fs
    amplitude = np.sqrt(2) * reference_rms * 10 ** (level_db / 20)
    return sum(
        amplitude * np.cos(2 * np.pi * m * fs / factor * t + rng.uniform(0, 2 * np.pi))
        for m in harmonics
    )


def vibrato_tone(
    fs: float, seconds: float, f0: float, harmonics: int = 10, depth: float = 0.02, seed: int = 0
) -> np.ndarray:
    """``harmonics`` partials (amplitudes 1/h) of a tone whose frequency swings ±``depth`` at a
    vibrato rate of about 5.5 Hz (itself wandering by ±10 %); RMS 0.1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    rate = 5.5 * (1 + 0.1 * np.sin(2 * np.pi * 0.37 * t + rng.uniform(0, 6)))
    pitch = f0 * (1 + depth * np.sin(2 * np.pi * np.cumsum(rate) / fs))
    phase = 2 * np.pi * np.cumsum(pitch) / fs
    x = sum(np.cos(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in range(1, harmonics + 1))
    return 0.1 * x / rms(x)
