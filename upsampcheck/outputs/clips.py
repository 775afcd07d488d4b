"""Audio clips a report offers to listen to, and their WAV files (``audio/*.wav``).

A :class:`Clip` is what a subject (a stage's response to silence, a generated file's quiet
passage) hands to the report folder: samples at their own rate, and the gain that was applied
so a faint buzz is audible. The page says that gain next to the player; ``gain_db = 0`` is the
true level. WAV files are 16-bit PCM written with the standard library, so writing needs no
audio package.
"""

from __future__ import annotations

import io
import math
import wave
from dataclasses import dataclass

import numpy as np

PEAK = 10 ** (-1 / 20)
"""Normalised clips peak at −1 dBFS."""


@dataclass(frozen=True)
class Clip:
    """One clip to hear.

    Attributes:
        name: file stem under ``audio/`` (``[a-z0-9_-]`` only), e.g. ``stage2_silence_norm``.
        title: what it is, in words, for the page.
        samples: ``(T,)`` or ``(C, T)`` float samples at true level (full scale is 1.0).
        sample_rate: Hz; rounded to an integer in the WAV header.
        gain_db: gain applied for listening (0: true level).
        mean_removed: the clip's mean (its DC) was subtracted before the gain, so what plays
            is the buzz, not a full-scale offset.
    """

    name: str
    title: str
    samples: np.ndarray
    sample_rate: float
    gain_db: float = 0.0
    mean_removed: bool = False


def normalised(clip: Clip, peak: float = PEAK, max_gain_db: float = 120.0) -> Clip:
    """The same clip with its mean removed, then scaled so its peak is ``peak`` (at most
    ``max_gain_db`` of gain). A DC offset would otherwise set the gain and bury the buzz under
    a full-scale step (two thumps at the ends); a constant clip becomes silence (0 dB, and the
    caller drops it). The returned ``gain_db`` says by how much the rest was amplified."""
    samples = np.asarray(clip.samples, dtype=np.float64)
    if samples.size:
        samples = samples - samples.mean(axis=-1, keepdims=True)
    top = float(np.max(np.abs(samples))) if samples.size else 0.0
    name = f"{clip.name}_norm"
    if top <= 0 or not math.isfinite(top):
        return Clip(name, clip.title, np.zeros_like(samples), clip.sample_rate, 0.0, True)
    gain_db = min(20 * math.log10(peak / top), max_gain_db)
    return Clip(name, clip.title, samples * 10 ** (gain_db / 20), clip.sample_rate, gain_db, True)


def wav_bytes(clip: Clip) -> bytes:
    """The clip as a 16-bit PCM WAV file (samples clipped to ±1, channels interleaved)."""
    samples = np.atleast_2d(np.asarray(clip.samples, dtype=np.float64))
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(max(1, round(clip.sample_rate)))
        out.writeframes(pcm.T.tobytes())
    return buffer.getvalue()
