"""The measurement pieces of `upsampcheck audio` against their formulas: long-term spectrum
scaling, the program floor, line shape (power, frequency, drift), consistency, grid inference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from upsampcheck.measure import grid, longterm, stationary

FS = 22050.0
N = 8192


def averaged(x: np.ndarray, n: int = N, quiet: np.ndarray | None = None) -> longterm.Spectra:
    count = longterm.frame_count(len(x), n)
    mask = np.zeros(count, bool) if quiet is None else quiet
    acc = longterm.SpectrumAccumulator(n, FS, count, mask, longterm.segment_count(count))
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2][:count]
    for i in range(0, count, 16):
        acc.add(frames[i : i + 16, None, :].astype(float))
    return acc.result()


def test_frame_length_keeps_bins_near_2_7_hz_and_shrinks_for_short_files():
    assert longterm.frame_length(44100, 10**9) == 16384
    assert longterm.frame_length(48000, 10**9) == 16384
    assert longterm.frame_length(22050, 10**9) == 8192
    assert longterm.frame_length(16000, 10**9) == 8192
    assert longterm.frame_length(44100, 44100) == 4096  # 1 s: 16 frames need 4096 samples


@pytest.mark.parametrize("offset", [0.0, 0.25, 0.5])
def test_a_pure_line_has_its_power_its_frequency_and_no_drift_wherever_it_falls(offset):
    f = (1000 + offset) * FS / N
    x = 0.1 * np.cos(2 * np.pi * f * np.arange(20 * int(FS)) / FS)
    s = averaged(x)
    floor = stationary.floor_at(s.average)
    measured = stationary.shape(s.average, floor, 1000 + round(offset), longterm.enbw_bins(N))
    assert measured.power == pytest.approx(0.005, rel=1e-3)  # a²/2
    assert measured.centre == pytest.approx(1000 + offset, abs=1e-3)
    assert measured.drift_bins < 0.01 and measured.purity > 0.999
    assert s.average.sum() == pytest.approx(0.005, rel=1e-3)  # bins sum to the mean power


def test_prominence_is_the_line_power_over_the_floor_per_resolution_bandwidth():
    rng = np.random.default_rng(0)
    sigma, amplitude = 1e-3, 1e-2
    t = np.arange(30 * int(FS)) / FS
    x = amplitude * np.cos(2 * np.pi * 3000.3 * t) + sigma * rng.standard_normal(len(t))
    s = averaged(x)
    floor = stationary.floor_at(s.average)
    per_bin = sigma**2 / (N / 2)  # white noise: its power spread evenly over N/2 bins
    assert 10 * np.log10(np.median(floor) / per_bin) == pytest.approx(0, abs=0.3)
    k = round(3000.3 / (FS / N))
    enbw = longterm.enbw_bins(N)
    measured = stationary.shape(s.average, floor, k, enbw)
    expected = 10 * math.log10(amplitude**2 / 2 / (per_bin * enbw))
    assert measured.prominence_db == pytest.approx(expected, abs=0.3)
    assert measured.centre * FS / N == pytest.approx(3000.3, abs=0.05)


@pytest.mark.parametrize("depth", [0.005, 0.01, 0.02])
def test_drift_of_a_vibrato_is_its_rms_frequency_deviation(depth):
    """Exact while the swing (here up to ±3.3 bins) stays inside the ±6-bin main lobe."""
    t = np.arange(20 * int(FS)) / FS
    f0 = 440.0
    phase = 2 * np.pi * np.cumsum(f0 * (1 + depth * np.sin(2 * np.pi * 5.5 * t))) / FS
    s = averaged(0.1 * np.cos(phase))
    floor = stationary.floor_at(s.average)
    k0 = round(f0 / (FS / N))
    k = k0 - 6 + int(np.argmax(s.average[k0 - 6 : k0 + 7]))
    measured = stationary.shape(s.average, floor, k, longterm.enbw_bins(N))
    expected = depth * f0 / math.sqrt(2) / (FS / N)
    assert measured.drift_bins == pytest.approx(expected, rel=0.06)


def test_a_note_held_in_one_segment_is_absent_from_the_others():
    t = np.arange(16 * int(FS)) / FS
    rng = np.random.default_rng(1)
    held = np.where((t > 2) & (t < 3), 0.1, 0.0) * np.cos(2 * np.pi * 2000 * t)
    x = held + 1e-4 * rng.standard_normal(len(t))
    s = averaged(x)
    k = round(2000 / (FS / N))
    floor = stationary.floor_at(s.average)
    measured = stationary.shape(s.average, floor, k, longterm.enbw_bins(N))
    bins = np.arange(k - longterm.LOBE, k + longterm.LOBE + 1)
    looks = list(s.segments)
    floors = [stationary.floor_at(look, bins) for look in looks]
    result = stationary.consistency(
        looks, floors, k, measured.centre, measured.power, longterm.enbw_bins(N)
    )
    assert result.absent >= len(looks) // 2 and result.fraction < 0.5  # needs 0.8 to count


def test_quiet_frames_are_the_quietest_share_without_digital_silence():
    power = np.array([0.0, 5.0, 1.0, 0.0, 3.0, 2.0, 4.0, 0.5, 6.0, 7.0, 8.0, 9.0])
    assert np.flatnonzero(longterm.quiet_frames(power, 0.2)).tolist() == [2, 7]
    assert not longterm.quiet_frames(np.zeros(4), 0.5).any()


def test_smooth_numbers_have_no_prime_factor_above_7():
    assert grid.smooth_numbers(30) == [
        2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 15, 16, 18, 20, 21, 24, 25, 27, 28, 30,
    ]  # fmt: skip


@pytest.mark.parametrize(("n", "total", "p"), [(3, 10, 0.1), (1, 1, 0.003), (7, 8, 0.02)])
def test_binomial_tail_matches_scipy(n, total, p):
    assert grid.binomial_tail(n, total, p) == pytest.approx(binom.sf(n - 1, total, p), rel=1e-9)


def test_lines_on_multiples_of_fs_over_32_give_that_grid_and_its_fitted_spacing():
    spacing = FS / 32
    freqs = [m * spacing + d for m, d in zip([3, 5, 7, 11], [0.1, -0.2, 0.05, 0.0], strict=True)]
    found = grid.infer_grid(freqs, FS, tolerance_hz=0.8, min_spacing_hz=43.0)
    assert found.factor == 32 and found.spacing_hz == spacing
    assert found.fitted_spacing_hz == pytest.approx(spacing, abs=0.05)
    assert found.explained == 4 and found.false_alarm < 1e-6


def test_one_line_at_a_quarter_of_the_rate_is_on_the_fs_over_4_grid():
    found = grid.infer_grid([FS / 4], FS, tolerance_hz=0.8, min_spacing_hz=43.0)
    assert found is not None and found.factor == 4


def test_lines_at_random_frequencies_give_no_grid():
    rng = np.random.default_rng(7)
    misses = sum(
        grid.infer_grid(list(rng.uniform(100, 10000, 6)), FS, 0.8, 43.0) is None for _ in range(200)
    )
    assert misses >= 196  # the false alarm is bounded by alpha = 0.01


def test_stage_rates_list_each_divisor_with_its_lines_and_the_chance_count():
    spacing = FS / 256
    freqs = [m * spacing for m in (64, 32, 40, 48, 13, 27, 77)]  # 64, 32, 40, 48 on fs/32
    found = grid.infer_grid(freqs, FS, tolerance_hz=0.8, min_spacing_hz=43.0)
    assert found.factor == 256
    rates = {r.factor: r for r in found.rates}
    assert rates[32].lines == 4 and rates[32].by_chance == pytest.approx(7 * 32 / 256)
    assert rates[4].lines == 1 and found.coarsest_rate(FS / 4) == FS / 4
