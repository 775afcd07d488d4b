"""Phase coherence at exact grid frequencies (:mod:`upsampcheck.measure.coherence`) against
its formulas: the folded DTFT, the Rayleigh statistic on noise and its family-wise bound, the
Dirichlet loss of a note off a multiple, the coherent level of a line that follows a program."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from vocoderlike import coherent_power, envelope, locked_lines

from upsampcheck.measure import coherence, grid, longterm

FS = 22050.0


def analyse(x: np.ndarray, n: int, fs: float = FS) -> coherence.Coherence:
    """The accumulator over every frame of ``x`` (hop ``n/2``), as ``upsampcheck audio``."""
    hop = n // 2
    count = longterm.frame_count(len(x), n)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop][:count]
    power = frames.var(axis=1)
    acc = coherence.CoherenceAccumulator(
        coherence.candidates(fs, n // 16), n, power, np.zeros(count, bool)
    )
    for i in range(0, count, 32):
        acc.add(frames[i : i + 32])
    return acc.result()


def covered_mean(env: np.ndarray, n: int, frames: int) -> float:
    """``env``'s mean weighted as the coherence frames weigh the samples: ``Σ_k w'(t − k n)``
    over frames of ``2n`` at hop ``n`` (1 inside, tapered at the two ends)."""
    w = coherence.cola_window(2 * n)
    cover = np.zeros(len(env))
    for k in range(frames):
        cover[k * n : k * n + 2 * n] += w[: len(env) - k * n]
    return float(np.sum(env * cover) / np.sum(cover))


def index_of(result: coherence.Coherence, p: int, q: int) -> int:
    c = result.candidates
    g = math.gcd(p, q)
    return int(np.flatnonzero((c.num == p // g) & (c.den == q // g))[0])


def test_candidates_hold_every_multiple_of_every_grid_once_and_weights_sum_to_one():
    cands = coherence.candidates(FS, 512)
    fractions = {Fraction(int(p), int(q)) for p, q in zip(cands.num, cands.den, strict=True)}
    expected = {Fraction(m, k) for k in grid.smooth_numbers(512) for m in range(1, k // 2 + 1)}
    assert fractions == expected and len(cands) == len(expected)
    assert cands.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert cands.grid_chance(256) == pytest.approx(128 / len(cands))


def test_the_folded_dtft_equals_the_direct_sum_at_every_candidate():
    rng = np.random.default_rng(0)
    n = 2048
    frames = rng.standard_normal((3, n)).astype(np.float32)
    starts = np.array([0, 1024, 12345])
    cands = coherence.candidates(FS, n // 16)
    folded = coherence.frame_dtft(frames, starts, cands)
    s = starts[:, None] + np.arange(n)[None, :]
    for i in range(0, len(cands), 37):
        p, q = int(cands.num[i]), int(cands.den[i])
        direct = (frames * np.exp(-2j * np.pi * ((p * s) % q) / q)).sum(1)
        np.testing.assert_allclose(folded[:, i], direct, rtol=2e-4, atol=2e-3)


def test_noise_gives_rayleigh_z_of_mean_one_and_false_alarms_within_the_bound():
    """200 draws of white noise (3 s at 8 kHz, 1024-sample analysis frames: 22 coherence
    frames of 2048, 389 candidates): ``z`` averages 1 (the overlap correction holds) and the
    family-wise false alarm stays within α (at α = 0.2, so the count says something)."""
    rng = np.random.default_rng(11)
    zs, alarms = [], 0
    for _ in range(200):
        result = analyse(rng.standard_normal(24000), 1024, fs=8000.0)
        zs.append(result.z)
        alarms += bool((result.false_alarm <= 0.2).any())
    z = np.concatenate(zs)
    assert z.mean() == pytest.approx(1.0, abs=0.05)
    assert np.mean(z > 3) == pytest.approx(math.exp(-3), abs=0.01)
    # Binomial(200, 0.2): at most 40 expected; 53 or more has probability below 0.002.
    assert alarms <= 52


@pytest.mark.parametrize(("offset_hz", "seconds"), [(0.05, 40), (0.1, 30), (0.5, 30)])
def test_a_note_off_a_multiple_loses_coherence_as_the_dirichlet_kernel_says(offset_hz, seconds):
    n, hop = 8192, 8192  # coherence frames: 2n at hop n
    f = 5 * FS / 32 + offset_hz
    t = np.arange(int(seconds * FS)) / FS
    rng = np.random.default_rng(2)
    x = 0.1 * np.cos(2 * np.pi * f * t) + 1e-4 * rng.standard_normal(len(t))
    result = analyse(x, n)
    i = index_of(result, 5, 32)
    frames = result.frames
    turn = math.pi * offset_hz * hop / FS
    predicted = abs(math.sin(frames * turn) / (frames * math.sin(turn)))
    assert result.resultant[i] == pytest.approx(predicted, abs=0.03)
    assert result.false_alarm[i] > 0.01  # not locked


def test_a_line_following_a_speech_envelope_has_its_coherent_level_and_follows_the_program():
    from speechlike import speech

    voice = speech(FS, 20, seed=3)
    env = envelope(voice, FS)
    assert 20 * np.log10(env.max() / env.min()) >= 40
    a = 0.01
    x = voice * 0.01 + locked_lines(FS, len(voice), [(1, 4)], [a], env)
    result = analyse(x, 8192)
    i = index_of(result, 1, 4)
    assert result.false_alarm[i] < 1e-6
    planted = coherent_power(a, np.full(1, covered_mean(env, 8192, result.frames)))
    assert 10 * np.log10(result.power[i] / planted) == pytest.approx(0, abs=0.1)
    assert result.program_correlation[i] > 0.8


def test_a_steady_bias_replica_does_not_follow_the_program():
    from speechlike import speech

    voice = speech(FS, 20, seed=3)
    x = voice + locked_lines(FS, len(voice), [(3, 8)], [0.02])
    result = analyse(x, 8192)
    i = index_of(result, 3, 8)
    assert result.false_alarm[i] < 1e-6
    assert abs(result.program_correlation[i]) < 0.3
    assert 10 * np.log10(result.power[i] / coherent_power(0.02, None)) == pytest.approx(0, abs=0.3)


def test_a_tone_whose_mean_frequency_is_on_the_grid_is_locked_whatever_its_vibrato():
    """Sinusoidal FM keeps a carrier at exactly the mean frequency (amplitude J0(β)): a
    documented limit, such a tone is a locked line."""
    t = np.arange(20 * int(FS)) / FS
    phase = 2 * np.pi * 1102.5 * t + 2.0 * np.sin(2 * np.pi * 5.5 * t)
    result = analyse(0.1 * np.cos(phase), 8192)
    i = index_of(result, 1, 20)
    assert result.false_alarm[i] < 1e-6
    from scipy.special import j0

    assert result.power[i] == pytest.approx(0.005 * j0(2.0) ** 2, rel=0.05)


@pytest.mark.parametrize("kind", ["speech", "music"])
def test_program_material_gives_false_alarms_within_the_bound_over_200_draws(kind):
    """Speech-like and music-like material (8 s at 8 kHz each, 2048-sample analysis frames:
    30 coherence frames, a new seed per draw): at most a fraction α of the draws may show any
    lock, at α = 0.2 and at α = 0.01 (binomial: 53 or more of 200 at 0.2, 7 or more at 0.01,
    have probability below 0.005 under the bound). The speech's syllable rate is drawn
    between 3.5 and 4.5 Hz and its formants move every 83 samples: at exactly 4 Hz and every
    80 samples (10 ms) they are clocks locked to fs (fs/2000, fs/80), real locks."""
    from speechlike import speech
    from vocoderlike import music

    rng = np.random.default_rng(3)
    alarms = {0.2: 0, 0.01: 0}
    for seed in range(200):
        if kind == "speech":
            x = speech(8000.0, 8, seed=seed, syllable_hz=rng.uniform(3.5, 4.5), block=83)
        else:
            x = music(8000.0, 8, seed=seed)
        result = analyse(x, 2048, fs=8000.0)
        for alpha in alarms:
            alarms[alpha] += bool((result.false_alarm <= alpha).any())
    assert alarms[0.2] <= 52 and alarms[0.01] <= 6, alarms
