"""Audio clips: normalisation gain and 16-bit WAV bytes."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from upsampcheck.outputs.clips import PEAK, Clip, normalised, wav_bytes


def test_normalised_clip_peaks_at_minus_1_dbfs_and_says_the_gain():
    samples = 1e-3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    clip = normalised(Clip("stage1_silence", "silence", samples, 8000))
    assert np.max(np.abs(clip.samples)) == pytest.approx(PEAK)
    assert clip.gain_db == pytest.approx(20 * np.log10(PEAK / np.max(np.abs(samples))))
    assert clip.name == "stage1_silence_norm"


def test_digital_silence_stays_silent_at_zero_gain():
    clip = normalised(Clip("quiet", "quiet", np.zeros(100), 8000))
    assert clip.gain_db == 0 and not clip.samples.any()


def test_wav_bytes_hold_the_samples_at_16_bit_and_the_rate():
    samples = np.array([[0.5, -0.25, 1.5], [0.0, 0.125, -2.0]])
    data = wav_bytes(Clip("x", "x", samples, 22050.4))
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 22050)
        pcm = np.frombuffer(wav.readframes(3), dtype="<i2").reshape(3, 2).T
    assert pcm.tolist() == [[16384, -8192, 32767], [0, 4096, -32767]]
