"""`upsampcheck audio` on signals built like real vocoder output: lines whose level follows
the program, found by their lock to the sample clock, at the levels the construction plants.

Every number asserted comes from the construction (:mod:`vocoderlike`, :mod:`speechlike`):
the planted coherent power ``(a · mean(e))² / 2``, the lines of a pattern repeated every 8 or
256 samples (its DFT), the pattern's RMS in LSB.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
from speechlike import speech, vibrato_tone
from vocoderlike import (
    coherent_power,
    envelope,
    locked_lines,
    music,
    pattern_lines,
    waveglow_like,
)

from upsampcheck.cli import main

FS = 22050
SECONDS = 30
N = 8192
FRACTIONS = [(1, 2), (1, 4), (3, 8), (37, 256), (77, 256), (101, 256)]
MARGINS_DB = [12.0, 18.0, 24.0, 15.0, 20.0, 28.0]
"""Each line's power over the program's in one resolution bandwidth, in the loud frames."""


def audio_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["audio", *args, "--format", "json", "--no-plots"])
    return code, json.loads(capsys.readouterr().out)


def band_power(program: np.ndarray, env: np.ndarray, freq: float) -> tuple[float, float]:
    """The program's power in one resolution bandwidth (Kaiser β=16, 2.30 bins) at ``freq``
    in the loud frames there (the fifth where that power is highest; frame ``j`` starts at
    ``j·N/2``), and the envelope's mean over those frames."""
    w = np.kaiser(N + 1, 16.0)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(program, N)[:: N // 2]
    k = round(freq / (FS / N))
    bins = np.fft.rfft(frames * w, axis=1)[:, max(k - 3, 0) : k + 4]
    band = (np.abs(bins) ** 2).mean(1) * 2 / (N * np.sum(w**2)) * N * np.sum(w**2) / np.sum(w) ** 2
    loud = band >= np.quantile(band, 0.8)
    e = np.lib.stride_tricks.sliding_window_view(env, N)[:: N // 2][: len(band)][loud]
    return float(band[loud].mean()), float(e.mean())


def planted(program: np.ndarray) -> tuple[np.ndarray, list[float], np.ndarray]:
    """Lines at :data:`FRACTIONS` following ``program``'s envelope, each :data:`MARGINS_DB`
    over the program around it where the program is loud there; (lines, amplitudes, env)."""
    env = envelope(program, FS)
    amplitudes = []
    for (p, q), margin in zip(FRACTIONS, MARGINS_DB, strict=True):
        nyquist = 2 * p == q
        band, e_loud = band_power(program, env, FS * p / q)
        line = band * 10 ** (margin / 10)
        amplitudes.append(math.sqrt(line * (1 if nyquist else 2)) / e_loud)
    return locked_lines(FS, len(program), FRACTIONS, amplitudes, env), amplitudes, env


@pytest.fixture(scope="module")
def programs():
    return {"speech": speech(FS, SECONDS, seed=3), "music": music(FS, SECONDS, seed=2)}


@pytest.mark.parametrize("kind", ["speech", "music"])
def test_lines_following_the_program_at_fs2_fs4_fs8_and_on_a_256_grid_are_found_at_their_level(
    programs, kind, capsys, tmp_path
):
    program = programs[kind]
    lines, amplitudes, env = planted(program)
    assert 20 * math.log10(env.max() / env.min()) >= 40  # the program's dynamic range
    path = tmp_path / f"{kind}.wav"
    sf.write(path, program + lines, FS, subtype="FLOAT")
    code, report = audio_json(capsys, str(path), "--out", str(tmp_path / "r"))
    assert code == 1
    entry = report["files"][0]
    assert entry["grid"]["factor"] == 256
    assert entry["grid"]["spacing_hz"] == pytest.approx(FS / 256)
    found = {line["coherence"]["fraction"]: line for line in entry["lines"]}
    for (p, q), a in zip(FRACTIONS, amplitudes, strict=True):
        line = found[f"{p}/{q}"]
        assert line["freq_hz"] == pytest.approx(FS * p / q, abs=1e-3)
        expected = 10 * math.log10(coherent_power(a, env, nyquist=2 * p == q))
        assert line["coherence"]["level_dbfs"] == pytest.approx(expected, abs=0.5)
        assert line["coherence"]["follows_program"] is True
        assert line["on_grid"] and line["locked"]


def test_waveglow_like_interleaved_channels_give_the_four_k_fs_over_8_lines_and_that_grid(
    programs, capsys, tmp_path
):
    rng = np.random.default_rng(5)
    biases, gains = rng.normal(0, 0.01, 8), rng.normal(0, 0.01, 8)
    path = tmp_path / "waveglow.wav"
    sf.write(path, waveglow_like(programs["speech"], biases, gains), FS, subtype="FLOAT")
    code, report = audio_json(capsys, str(path), "--out", str(tmp_path / "r"))
    entry = report["files"][0]
    assert entry["grid"]["factor"] == 8
    found = {line["coherence"]["fraction"]: line for line in entry["lines"]}
    for k, power in pattern_lines(biases).items():
        g = math.gcd(k, 8)
        line = found[f"{k // g}/{8 // g}"]
        assert line["coherence"]["level_dbfs"] == pytest.approx(10 * math.log10(power), abs=0.5)
        assert line["coherence"]["follows_program"] is False  # a bias replica: steady
    assert len(entry["lines"]) == 4
    assert code == 1


def test_a_random_init_hifigan_output_shows_the_86_13_hz_grid(tmp_path, capsys):
    pytest.importorskip("torchaudio")
    from generators import generated

    out = generated(speech(FS, 15, seed=5), FS)
    path = tmp_path / "hifigan.wav"
    sf.write(path, out, FS, subtype="PCM_16")
    code, report = audio_json(capsys, str(path), "--out", str(tmp_path / "r"))
    assert code == 1
    grid = report["files"][0]["grid"]
    assert grid["factor"] == 256 and grid["spacing_hz"] == pytest.approx(86.1328, abs=1e-4)
    assert grid["lines_explained"] == grid["locked_lines"]
    rates = {r["fs_in_hz"] for r in grid["stage_rates"]}
    assert FS / 4 in rates  # the third stage's input rate: its line at 5512.5 Hz


def _note(fs: float, seconds: float, freq: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    rng = np.random.default_rng(seed)
    return 0.1 * np.cos(2 * np.pi * freq * t) + 1e-4 * rng.standard_normal(len(t))


def _chord(fs: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    notes = [440 * 2 ** (k / 12) for k in (-4, 0, 3)]  # F, A, C around A440
    x = sum(np.cos(2 * np.pi * h * f * t + h) / h for f in notes for h in range(1, 6))
    rng = np.random.default_rng(4)
    return 0.05 * x / np.sqrt(np.mean(x**2)) + 1e-4 * rng.standard_normal(len(t))


NO_GRID = {
    "note 0.1 Hz off 5 fs/32": lambda: (_note(FS, 30, 5 * FS / 32 + 0.1), FS),
    "note 0.5 Hz off fs/4": lambda: (_note(FS, 30, FS / 4 + 0.5), FS),
    "vibrato": lambda: (vibrato_tone(FS, 20, 220.0, depth=0.02), FS),
    "chord": lambda: (_chord(FS, 20), FS),
    "1 kHz test tone at 48 kHz": lambda: (_note(48000, 10, 1000.0), 48000),
    "speech": lambda: (speech(FS, 20, seed=8), FS),
    "music": lambda: (music(FS, 20, seed=9), FS),
    "white noise": lambda: (0.1 * np.random.default_rng(6).standard_normal(20 * FS), FS),
}


@pytest.mark.parametrize("name", list(NO_GRID))
def test_program_material_and_tones_give_no_grid(name, capsys, tmp_path):
    x, fs = NO_GRID[name]()
    path = tmp_path / "x.wav"
    sf.write(path, x, fs, subtype="FLOAT")
    code, report = audio_json(capsys, str(path), "--out", str(tmp_path / "r"))
    assert code == 0 and report["files"][0]["grid"] is None
    locked = report["files"][0]["lines"]
    if name.startswith("1 kHz"):  # exactly fs/48: locked, on no grid, maybe a test tone
        assert [line["freq_hz"] for line in locked] == [1000.0]
        finding = next(f for f in report["findings"] if f["check"] == "locked")
        assert finding["severity"] == "info" and "test tone" in finding["cause"]
    elif name in ("vibrato", "chord"):
        # Steady synthetic tones: a partial exactly on a multiple of fs/K is a locked carrier
        # (the 220 Hz vibrato's and A440's harmonics: 220 · 5 = 44/441 fs, 220 · 9 = 22/245 fs),
        # each alone on its grid.
        for line in locked:
            assert line["freq_hz"] / 220 == pytest.approx(round(line["freq_hz"] / 220), abs=1e-6)
    else:
        assert locked == []


def _lsb_file(path, size_lsb: int) -> np.ndarray:
    """10 s of speech, then 20 s of digital silence, 16-bit, with a 256-periodic pattern of
    ``±size_lsb`` steps added throughout; returns the pattern (in steps)."""
    rng = np.random.default_rng(12)
    pattern = rng.integers(-1, 2, 256) * size_lsb
    voice = speech(FS, 10, seed=3, noise_db=-300)
    x = np.concatenate([np.round(voice * 32768), np.zeros(20 * FS)])
    x += np.tile(pattern, len(x) // 256 + 1)[: len(x)]
    sf.write(path, np.clip(x, -32768, 32767).astype(np.int16), FS, subtype="PCM_16")
    return pattern


def test_a_one_lsb_periodic_pattern_in_near_silence_is_reported_in_lsb_and_inaudible(
    capsys, tmp_path
):
    pattern = _lsb_file(tmp_path / "lsb.wav", 1)
    code, report = audio_json(capsys, str(tmp_path / "lsb.wav"), "--out", str(tmp_path / "r"))
    assert code == 0
    grid = report["files"][0]["grid"]
    assert grid["factor"] == 256
    rms = float(np.std(pattern))
    assert grid["pattern_lsb"] == pytest.approx(rms, rel=0.15)
    tonal = next(f for f in report["findings"] if f["check"] == "tonal")
    assert tonal["severity"] == "info" and "LSB RMS (inaudible)" in tonal["message"]


def test_the_same_pattern_at_20_lsb_fails(capsys, tmp_path):
    pattern = _lsb_file(tmp_path / "lsb20.wav", 20)
    code, report = audio_json(capsys, str(tmp_path / "lsb20.wav"), "--out", str(tmp_path / "r"))
    assert code == 1
    grid = report["files"][0]["grid"]
    assert grid["factor"] == 256
    assert grid["pattern_lsb"] == pytest.approx(float(np.std(pattern)), rel=0.15)
    tonal = next(f for f in report["findings"] if f["check"] == "tonal")
    assert tonal["severity"] == "fail" and "inaudible" not in tonal["message"]


def test_a_clean_16_bit_test_tone_is_named_and_its_rounding_pattern_is_inaudible(capsys, tmp_path):
    """1 kHz at 48 kHz, 16-bit without dither: the rounding error repeats every 48 samples,
    so the tone and its rounding pattern lie on fs/48. The tone (steady, all of the file) is
    named a probable test tone and left out; the pattern is the rounding's LSB/√12 = 0.29 LSB
    RMS: inaudible, not a fail."""
    t = np.arange(48000 * 10) / 48000
    path = tmp_path / "tone.wav"
    sf.write(path, 0.1 * np.cos(2 * np.pi * 1000 * t), 48000, subtype="PCM_16")
    code, report = audio_json(capsys, str(path), "--out", str(tmp_path / "r"))
    assert code == 0
    grid = report["files"][0]["grid"]
    assert grid["factor"] == 48
    assert grid["pattern_lsb"] == pytest.approx(1 / math.sqrt(12), rel=0.15)
    tonal = next(f for f in report["findings"] if f["check"] == "tonal")
    assert tonal["severity"] == "info" and "probably a test tone" in tonal["message"]
    assert "test tone" in tonal["cause"]
