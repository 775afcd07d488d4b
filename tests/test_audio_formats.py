"""`upsampcheck audio` on files as users have them: FLAC, MP3 (with its encoder delay and a
header whose length is an estimate), Ogg Vorbis, a FLAC of unknown length, a non-UTF-8 name,
1024 channels. Lines planted as in :mod:`test_audio_lock`; where the codec keeps a line its
level matches the WAV's within 0.5 dB, and no file of these exits 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from speechlike import speech
from test_audio_lock import FRACTIONS, FS, SECONDS, planted

from upsampcheck.cli import main

FORMATS = {
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}


def audio_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["audio", *args, "--format", "json", "--no-plots"])
    return code, json.loads(capsys.readouterr().out)


def levels(entry: dict) -> dict[str, float]:
    return {ln["coherence"]["fraction"]: ln["coherence"]["level_dbfs"] for ln in entry["lines"]}


@pytest.fixture(scope="module")
def planted_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats")
    program = speech(FS, SECONDS, seed=3)
    lines, _, _ = planted(program)
    x = 0.5 * (program + lines)
    paths = {"wav": folder / "planted.wav"}
    sf.write(paths["wav"], x, FS, subtype="FLOAT")
    for ext, (fmt, subtype) in FORMATS.items():
        if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
            continue
        paths[ext] = folder / f"planted.{ext}"
        sf.write(paths[ext], x, FS, format=fmt, subtype=subtype)
    return paths


@pytest.mark.parametrize("ext", list(FORMATS))
def test_a_lossless_or_lossy_copy_keeps_the_locked_lines_within_half_a_db(
    planted_files, ext, capsys, tmp_path
):
    if ext not in planted_files:
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {ext}")
    args = (str(planted_files["wav"]), str(planted_files[ext]), "--out", str(tmp_path / "r"))
    code, report = audio_json(capsys, *args)
    assert code == 1
    wav, other = report["files"]
    assert other["frames"] == wav["frames"] and other["grid"]["factor"] == 256
    reference, kept = levels(wav), levels(other)
    assert sorted(reference) == sorted(f"{p}/{q}" for p, q in FRACTIONS)
    kept_planted = [f for f in reference if f in kept]
    # MP3 at 22.05 kHz drops the line at the Nyquist frequency; everything else stays.
    assert len(kept_planted) >= len(reference) - 1
    for fraction in kept_planted:
        if kept[fraction] < reference[fraction] - 20:  # what the codec removed
            continue
        assert kept[fraction] == pytest.approx(reference[fraction], abs=0.5)


def test_an_mp3_whose_header_announces_more_samples_is_read_to_its_decoded_end(
    planted_files, capsys, tmp_path
):
    if "mp3" not in planted_files:
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write MP3")
    data = planted_files["mp3"].read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    announced = sf.info(str(cut)).frames
    code, report = audio_json(capsys, str(cut), "--out", str(tmp_path / "r"))
    assert code == 1  # the lines, not a usage error
    entry = report["files"][0]
    assert entry["frames"] < announced and entry["grid"]["factor"] == 256
    assert any(f"header announced {announced} samples" in note for note in report["notes"])


def test_a_flac_of_unknown_length_is_read(planted_files, capsys, tmp_path):
    data = bytearray(planted_files["flac"].read_bytes())
    assert data[:4] == b"fLaC"
    data[8 + 13] &= 0xF0  # STREAMINFO's 36-bit sample count: 0 means unknown
    data[8 + 14 : 8 + 18] = bytes(4)
    stream = tmp_path / "stream.flac"
    stream.write_bytes(bytes(data))
    code, report = audio_json(capsys, str(stream), "--out", str(tmp_path / "r"))
    assert code == 1
    entry = report["files"][0]
    assert entry["frames"] == FS * SECONDS and entry["grid"]["factor"] == 256
    assert any("an unknown length" in note for note in report["notes"])


def test_a_file_name_that_is_not_utf8_is_read_and_printed_escaped(planted_files, tmp_path):
    name = os.fsdecode(b"voix-\xe9t\xe9.flac")
    path = tmp_path / name
    path.write_bytes(planted_files["flac"].read_bytes())
    proc = subprocess.run(
        [sys.executable, "-m", "upsampcheck", "audio", str(path), "--no-plots", "--out",
         str(tmp_path / "r")],
        capture_output=True, env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert b"voix-\\xe9t\\xe9.flac" in proc.stdout


def test_a_1024_channel_file_is_read_within_a_bounded_memory(tmp_path):
    """Blocks and batches shrink with the channel count: 1024 channels of 1 s at 8 kHz peak
    well under 1.5 GB (the samples alone are 16 MB, a decoded float64 copy 64 MB)."""
    path = tmp_path / "many.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.05 * rng.standard_normal((8000, 1024))).astype(np.float32), 8000, "PCM_16")
    code = (  # VmHWM: this process's peak (ru_maxrss would count pytest's, kept across exec)
        "import re, sys; from upsampcheck.cli import main; "
        f"rc = main(['audio', {str(path)!r}, '--no-plots', '--out', {str(tmp_path / 'r')!r}]); "
        "status = open('/proc/self/status').read(); "
        "print('RSS', re.search(r'VmHWM:\\s*(\\d+)', status).group(1)); sys.exit(rc)"
    )
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status (Linux) for this process's own peak memory")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rss_mib = int(proc.stdout.split("RSS")[1]) / 1024
    assert rss_mib < 600


@pytest.mark.parametrize("ext", list(FORMATS))
def test_the_waveglow_like_lines_survive_each_format_within_half_a_db(ext, capsys, tmp_path):
    """The k·fs/8 bias lines of :func:`vocoderlike.waveglow_like` in FLAC, MP3 and Ogg: each
    one the codec keeps at its planted level within 0.5 dB (MP3 at 22.05 kHz drops fs/2). A
    lossy codec adds faint locked lines of its own (MP3 on fs/32, Vorbis on fs/256, 80 dB
    and more below), so the grid is a multiple of fs/8, not fs/8 itself."""
    from vocoderlike import pattern_lines, waveglow_like

    fmt, subtype = FORMATS[ext]
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {ext}")
    rng = np.random.default_rng(5)
    biases, gains = rng.normal(0, 0.01, 8), rng.normal(0, 0.01, 8)
    path = tmp_path / f"waveglow.{ext}"
    sf.write(path, waveglow_like(speech(FS, SECONDS, seed=3), biases, gains), FS, format=fmt,
             subtype=subtype)  # fmt: skip
    code, report = audio_json(capsys, str(path), "--out", str(tmp_path / "r"))
    assert code in (0, 1)
    entry = report["files"][0]
    assert entry["grid"]["factor"] % 8 == 0
    found = levels(entry)
    kept = 0
    for k, power in pattern_lines(biases).items():
        g = math.gcd(k, 8)
        level = found.get(f"{k // g}/{8 // g}")
        if level is None or level < 10 * math.log10(power) - 20:  # removed by the codec
            assert ext == "mp3" and k == 4
            continue
        kept += 1
        assert level == pytest.approx(10 * math.log10(power), abs=0.5)
    assert kept >= 3


def test_an_opus_file_keeps_its_locked_lines_within_half_a_db(capsys, tmp_path):
    """Opus (48 kHz only): lines at fs/4, fs/8 and 3fs/16 under speech; Opus adds faint locked
    lines of its own on fs/480 (its 10 ms frames)."""
    from vocoderlike import coherent_power, locked_lines

    if "OPUS" not in sf.available_subtypes("OGG"):
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write Opus")
    fs = 48000
    voice = speech(fs, 15, seed=2)
    fractions = [(1, 4), (1, 8), (3, 16)]
    x = 0.5 * (voice + locked_lines(fs, len(voice), fractions, [0.003] * 3))
    path = tmp_path / "speech.opus"
    sf.write(path, x, fs, format="OGG", subtype="OPUS")
    code, report = audio_json(capsys, str(path), "--out", str(tmp_path / "r"))
    assert code in (0, 1)
    found = levels(report["files"][0])
    expected = 10 * math.log10(coherent_power(0.0015, None))
    for p, q in fractions:
        assert found[f"{p}/{q}"] == pytest.approx(expected, abs=0.5)
