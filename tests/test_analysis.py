"""The two pieces of scipy.signal written here for start-up time, checked against scipy."""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import chirp, find_peaks

from upsampcheck.measure.analysis import LOBE, find_lines, peaks_with_prominence, power_spectrum
from upsampcheck.measure.probes import exponential_sweep


def test_the_sweep_follows_scipy_s_logarithmic_chirp():
    t = torch.arange(8000, dtype=torch.float64) / 4000
    ours = exponential_sweep(t, 4.0, 1900.0).numpy()
    theirs = chirp(t.numpy(), f0=4.0, t1=float(t[-1]), f1=1900.0, method="logarithmic")
    assert np.abs(ours - theirs).max() < 1e-9


def test_peak_prominence_agrees_with_find_peaks_on_lines_over_a_sloped_floor():
    rng = np.random.default_rng(0)
    n = 2049
    floor = -60 - 30 * np.linspace(0, 1, n) + rng.normal(0, 0.5, n)
    spectrum_db = floor.copy()
    lines = [100, 300, 316, 900, 1500, 2048]  # two close lines, one on the Nyquist bin
    for k in lines:
        spectrum_db[k] += 40
    ours, prominence = peaks_with_prominence(spectrum_db, 2 * LOBE)
    found = {int(k) for k, p in zip(ours, prominence, strict=True) if p >= 10}
    padded = np.r_[spectrum_db, spectrum_db[-2::-1][: 2 * LOBE]]  # mirror about the Nyquist
    theirs, _ = find_peaks(padded, prominence=10, wlen=4 * LOBE + 1)
    assert found == set(lines) == {int(k) for k in theirs if k < n}


def test_a_line_s_level_is_exact_wherever_it_falls_between_bins():
    fs, n_fft = 16000.0, 4096
    t = torch.arange(65536, dtype=torch.float64) / fs
    for freq in (1000.0, 1000.0 + fs / n_fft / 3, 1000.0 + fs / n_fft / 2):
        tone = 0.01 * np.sqrt(2) * torch.sin(2 * np.pi * freq * t)
        noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(1), dtype=t.dtype)
        spectrum = power_spectrum(tone + 1e-4 * noise, n_fft)
        (line,) = find_lines(spectrum, fs, 0.1**2, "dc", [1000.0])
        assert abs(line.level_db - (-20.0)) < 0.05  # a 0.01-RMS line re a 0.1-RMS signal
        assert abs(line.freq_hz - freq) < fs / n_fft / 4
