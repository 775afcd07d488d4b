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
from test_audio_lock import FRACTIONS, FS, NO_GRID, SECONDS, _lsb_file, planted
from vocoderlike import music

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


def writable(ext: str) -> bool:
    fmt, subtype = FORMATS[ext]
    return fmt in sf.available_formats() and subtype in sf.available_subtypes(fmt)


def write_as(path, x: np.ndarray, fs: int, ext: str, best: bool = False) -> None:
    """``x`` into ``path`` in ``ext``'s format (skip the test where libsndfile cannot); with
    ``best``, at the codec's highest quality (``compression_level`` 0)."""
    if not writable(ext):
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {ext}")
    fmt, subtype = FORMATS[ext]
    extra = {"compression_level": 0.0} if best else {}
    sf.write(path, x, fs, format=fmt, subtype=subtype, **extra)


def planted_in(folder, program: np.ndarray, stem: str) -> dict:
    lines, _, _ = planted(program)
    x = 0.5 * (program + lines)
    paths = {"wav": folder / f"{stem}.wav"}
    sf.write(paths["wav"], x, FS, subtype="FLOAT")
    for ext in FORMATS:
        if writable(ext):
            paths[ext] = folder / f"{stem}.{ext}"
            write_as(paths[ext], x, FS, ext, best=True)
    return paths


@pytest.fixture(scope="module")
def planted_files(tmp_path_factory):
    return planted_in(tmp_path_factory.mktemp("formats"), speech(FS, SECONDS, seed=3), "speech")


@pytest.fixture(scope="module")
def planted_music(tmp_path_factory):
    return planted_in(tmp_path_factory.mktemp("music"), music(FS, SECONDS, seed=2), "music")


@pytest.mark.parametrize("kind", ["speech", "music"])
@pytest.mark.parametrize("ext", list(FORMATS))
def test_a_lossless_or_lossy_copy_keeps_the_locked_lines_within_half_a_db(
    planted_files, planted_music, kind, ext, capsys, tmp_path
):
    files = planted_files if kind == "speech" else planted_music
    if ext not in files:
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {ext}")
    args = (str(files["wav"]), str(files[ext]), "--out", str(tmp_path / "r"))
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


def locked(entry: dict) -> dict[float, float]:
    """``{freq_hz: coherent level in dBFS}`` of every locked line."""
    return {ln["freq_hz"]: ln["coherence"]["level_dbfs"] for ln in entry["lines"] if ln["locked"]}


CODEC_LINES_DB = -45.0
"""A lossy codec's own clock-locked lines (its frames and blocks: MP3 1152 samples, Vorbis
256/2048) lie this far and more under the program (dB re the file's RMS) at its best
quality; at Vorbis' default quality a pure tone's block sidebands reach −52 dB re the tone."""


@pytest.mark.parametrize("ext", list(FORMATS))
@pytest.mark.parametrize("name", list(NO_GRID))
def test_program_material_and_tones_stay_without_a_fail_in_each_format(name, ext, capsys, tmp_path):
    """The no-grid constructions of :mod:`test_audio_lock` in FLAC, MP3 and Ogg: no fail and
    no exit 2; their own locked lines (a test tone, a vibrato's or chord's partial exactly on
    a multiple) kept within 0.5 dB; FLAC adds no line and no grid, a lossy codec at its best
    quality only lines of its own far below the program."""
    x, fs = NO_GRID[name]()
    sf.write(tmp_path / "x.wav", x, fs, subtype="FLOAT")
    write_as(tmp_path / f"x.{ext}", x, fs, ext, best=True)
    code, report = audio_json(
        capsys, str(tmp_path / "x.wav"), str(tmp_path / f"x.{ext}"), "--out", str(tmp_path / "r")
    )
    assert code == 0
    wav, other = (locked(entry) for entry in report["files"])
    for freq, level in wav.items():
        assert other[freq] == pytest.approx(level, abs=0.5)
    if ext == "flac":
        assert other.keys() == wav.keys() and report["files"][1]["grid"] is None
    rms_dbfs = report["files"][1]["rms_dbfs"]
    for freq in other.keys() - wav.keys():
        assert other[freq] - rms_dbfs <= CODEC_LINES_DB, (freq, other[freq])


@pytest.mark.parametrize("ext", list(FORMATS))
@pytest.mark.parametrize(("size", "verdict"), [(1, 0), (20, 1)])
def test_an_lsb_pattern_keeps_its_size_and_verdict_in_each_format(
    size, verdict, ext, capsys, tmp_path
):
    """The 256-periodic ±1 and ±20 LSB patterns in 16-bit near-silence: in FLAC, MP3 and Ogg
    the pattern's size (in 16-bit steps for a lossy file) within 15 % of the pattern's RMS;
    ±1 LSB inaudible, not a fail; ±20 LSB a fail."""
    pattern = _lsb_file(tmp_path / "lsb.wav", size)
    samples, fs = sf.read(tmp_path / "lsb.wav", dtype="int16")
    write_as(tmp_path / f"lsb.{ext}", samples, fs, ext)
    code, report = audio_json(capsys, str(tmp_path / f"lsb.{ext}"), "--out", str(tmp_path / "r"))
    assert code == verdict
    grid = report["files"][0]["grid"]
    assert grid["factor"] % 256 == 0  # Vorbis adds faint lines of its own on fs/512
    if size == 1:
        assert grid["pattern_lsb"] <= 2.0
        tonal = next(f for f in report["findings"] if f["check"] == "tonal")
        assert tonal["severity"] == "info" and "(inaudible)" in tonal["message"]
    else:
        assert grid["pattern_lsb"] == pytest.approx(float(np.std(pattern)), rel=0.15)


@pytest.fixture(scope="module")
def hifigan_output():
    pytest.importorskip("torchaudio")
    from generators import generated

    return generated(speech(FS, 15, seed=5), FS)


@pytest.mark.parametrize("ext", list(FORMATS))
def test_a_random_init_hifigan_output_keeps_its_grid_and_lines_in_each_format(
    hifigan_output, ext, capsys, tmp_path
):
    """The HiFi-GAN-shaped generator's output (16-bit WAV) and its FLAC, MP3 and Ogg copies:
    the 86.13 Hz grid (Vorbis: a multiple, its own fs/512 lines), and every locked line the
    codec keeps within 0.5 dB of the WAV's."""
    sf.write(tmp_path / "h.wav", hifigan_output, FS, subtype="PCM_16")
    write_as(tmp_path / f"h.{ext}", hifigan_output, FS, ext, best=True)
    code, report = audio_json(
        capsys, str(tmp_path / "h.wav"), str(tmp_path / f"h.{ext}"), "--out", str(tmp_path / "r")
    )
    assert code == 1
    wav, other = report["files"]
    assert other["grid"]["factor"] % 256 == 0
    reference, kept = locked(wav), locked(other)
    loudest = max(reference.values())
    strong = {f: level for f, level in reference.items() if level > loudest - 20}
    assert 5512.5 in strong  # the third stage's input rate
    for freq, level in strong.items():
        if freq in kept and kept[freq] > level - 20:  # else removed by the codec
            assert kept[freq] == pytest.approx(level, abs=0.5)
    assert sum(f in kept for f in strong) >= len(strong) - 1  # MP3 drops the Nyquist line


def test_many_files_keep_figures_and_clips_for_the_first_few_only(tmp_path, capsys):
    """Two files more than MEDIA_FILES in one call: every one measured (the same 1 kHz line
    in each), figures and clips for the first MEDIA_FILES, a note saying so."""
    from upsampcheck.audio.check import MEDIA_FILES

    t = np.arange(8000 * 3) / 8000
    rng = np.random.default_rng(1)
    paths = []
    for i in range(MEDIA_FILES + 2):
        x = 0.05 * rng.standard_normal(len(t)) + 0.01 * np.cos(2 * np.pi * 1000 * t)
        paths.append(tmp_path / f"f{i:02d}.wav")
        sf.write(paths[-1], x, 8000, subtype="FLOAT")
    out = tmp_path / "r"
    assert main(["audio", *map(str, paths), "--out", str(out), "--format", "json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert len(report["files"]) == MEDIA_FILES + 2
    for entry in report["files"]:
        assert [ln["freq_hz"] for ln in entry["lines"] if ln["locked"]] == [1000.0]
    drawn = {p.name.split("_")[0] for p in out.glob("file*_spectrogram.png")}
    assert drawn == {f"file{i}" for i in range(MEDIA_FILES)}
    clips = {p.name.split("_")[0] for p in (out / "audio").glob("file*.wav")}
    assert clips == {f"file{i}" for i in range(MEDIA_FILES)}
    assert any(f"first {MEDIA_FILES} of the {MEDIA_FILES + 2} files" in n for n in report["notes"])
