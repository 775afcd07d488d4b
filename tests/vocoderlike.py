"""Signals that look like real vocoder output, made in the test (nothing downloaded).

* :func:`envelope`: a program's level over time (the RMS in 10 ms steps, smoothed), 1 at its
  loudest: what a real upsampling line's level follows.
* :func:`locked_lines`: cosines at exact ``p·fs/q`` whose amplitude is that envelope; their
  coherent power is ``a² · mean(e)² / 2`` (``(a·mean(e))²`` at ``fs/2``).
* :func:`music`: notes from the equal-tempered scale (A = 440 Hz, never a multiple of
  ``fs/K``), 6 harmonics each, attack and decay, two voices in phrases of 2-3 s with rests of
  about a second between them, a faint noise under them.
* :func:`waveglow_like`: the program through 8 interleaved channels, each with its own small
  gain error and bias: sample ``s`` comes from channel ``s mod 8``, so the biases repeat every
  8 samples and make lines at ``k·fs/8`` with the pattern's DFT as their amplitudes.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter


def envelope(x: np.ndarray, fs: float, floor: float = 1e-3) -> np.ndarray:
    """The program's level, 1 at its loudest, never below ``floor`` (−60 dB)."""
    step = int(0.01 * fs)
    count = -(-len(x) // step)
    padded = np.pad(x, (0, count * step - len(x)))
    level = np.sqrt(np.mean(padded.reshape(count, step) ** 2, axis=1))
    smooth = lfilter([0.3], [1, -0.7], level)  # about 30 ms
    e = np.repeat(smooth, step)[: len(x)]
    e = lfilter([0.01], [1, -0.99], e)  # and per sample (no steps)
    return np.maximum(e / e.max(), floor)


def locked_lines(
    fs: float,
    n: int,
    fractions: list[tuple[int, int]],
    amplitudes: list[float],
    env: np.ndarray | None = None,
    seed: int = 1,
) -> np.ndarray:
    """``Σ a_i · env · cos(2π p_i/q_i · s + φ_i)`` (seeded phases, 0 at ``fs/2`` where a
    phase would scale the amplitude by ``cos φ``; exact in ``s``, no rounding of the
    frequency)."""
    rng = np.random.default_rng(seed)
    s = np.arange(n)
    out = np.zeros(n)
    for (p, q), a in zip(fractions, amplitudes, strict=True):
        phase = 2 * np.pi * ((p * s) % q) / q
        offset = rng.uniform(0, 2 * np.pi)
        out += a * np.cos(phase + (0.0 if 2 * p == q else offset))
    return out if env is None else out * env


def coherent_power(amplitude: float, env: np.ndarray | None, nyquist: bool = False) -> float:
    """The planted line's coherent power: ``(a · mean(e))² / 2`` (``/ 1`` at ``fs/2``)."""
    mean = 1.0 if env is None else float(np.mean(env))
    return (amplitude * mean) ** 2 / (1 if nyquist else 2)


def music(fs: float, seconds: float, seed: int = 0, noise_db: float = -60.0) -> np.ndarray:
    """Two voices of notes (see the module docstring), RMS 0.1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    out = np.zeros(n)
    for voice in range(2):
        start = 0.0
        while start < seconds:
            length = rng.uniform(0.25, 1.2)
            key = rng.integers(-12, 15) + 12 * voice
            f0 = 440.0 * 2 ** (key / 12)
            first, last = int(start * fs), min(n, int((start + length) * fs))
            t = np.arange(last - first) / fs
            shape = np.minimum(t / 0.01, 1) * np.exp(-t / rng.uniform(0.2, 0.8))
            tone = sum(
                np.cos(2 * np.pi * h * f0 * t + rng.uniform(0, 6)) / h**1.5
                for h in range(1, 7)
                if h * f0 < 0.45 * fs
            )
            out[first:last] += shape * tone
            start += length + rng.uniform(0.0, 0.3)
    phrase = np.ones(n)
    start = 0.0
    while start < seconds:
        length, rest = rng.uniform(2.0, 3.0), rng.uniform(0.8, 1.2)
        phrase[int((start + length) * fs) : int((start + length + rest) * fs)] = 0.0
        start += length + rest
    ramp = np.hanning(int(0.04 * fs))
    out *= np.convolve(phrase, ramp / ramp.sum(), mode="same")
    out *= 0.1 / np.sqrt(np.mean(out**2))
    return out + rng.standard_normal(n) * 0.1 * 10 ** (noise_db / 20)


def waveglow_like(program: np.ndarray, biases: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """``(1 + g[s mod 8]) · x[s] + b[s mod 8]``."""
    index = np.arange(len(program)) % len(biases)
    return (1 + gains[index]) * program + biases[index]


def pattern_lines(pattern: np.ndarray) -> dict[int, float]:
    """``{k: power}`` of the lines a pattern repeated every ``P`` samples makes at ``k·fs/P``
    (``0 < k <= P/2``): ``2|B_k|²``, ``|B_k|²`` at ``fs/2``, ``B = DFT(pattern) / P``."""
    size = len(pattern)
    spectrum = np.fft.rfft(pattern) / size
    return {
        k: float(np.abs(spectrum[k]) ** 2 * (1 if 2 * k == size else 2))
        for k in range(1, size // 2 + 1)
    }
