"""`upsampcheck audio`: stationary lines and the upsampling grid in generated audio.

Every signal is made here (:mod:`speechlike`, :mod:`generators`); expected numbers come from
the construction: planted line frequencies and levels, the quiet passages' noise density, the
RMS drift of a vibrato (``depth · f0 / √2``), HiFi-GAN's hop of 256.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from speechlike import grid_lines, rms, speech, vibrato_tone

from upsampcheck.cli import main
from upsampcheck.outputs.clips import PEAK

FS = 22050
SECONDS = 30
PLANTED = [2, 3, 5, 7, 11, 13]
PLANTED_DB = -35.0
NOISE_DB = -60.0


def enbw(n: int) -> float:
    w = np.kaiser(n + 1, 16.0)[:-1]
    return n * np.sum(w**2) / np.sum(w) ** 2


def run(*args: str) -> tuple[int, str, str]:
    """The CLI in a child process (stdout, stderr as text)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from upsampcheck.cli import main; sys.exit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def signals():
    voice = speech(FS, SECONDS, seed=3, noise_db=NOISE_DB)
    lines = grid_lines(FS, len(voice), 32, PLANTED, PLANTED_DB, rms(voice))
    return {"speech": voice, "lines": lines}


@pytest.fixture(scope="module")
def files(signals, tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    voice, lines = signals["speech"], signals["lines"]
    paths = {
        "speech": folder / "speech.wav",
        "planted": folder / "planted.wav",
        "vibrato": folder / "vibrato.wav",
    }
    sf.write(paths["speech"], voice, FS, subtype="FLOAT")
    sf.write(paths["planted"], voice + lines, FS, subtype="FLOAT")
    sf.write(paths["vibrato"], vibrato_tone(FS, 20, 220.0, depth=0.02), FS, subtype="FLOAT")
    other = speech(FS, SECONDS, seed=4, noise_db=NOISE_DB)
    stereo = np.stack([voice + lines, other + 0.5 * lines], axis=1) * 0.5
    paths["stereo_wav"] = folder / "stereo.wav"
    paths["stereo_flac"] = folder / "stereo.flac"
    sf.write(paths["stereo_wav"], stereo, FS, subtype="PCM_24")
    sf.write(paths["stereo_flac"], stereo, FS, subtype="PCM_24")
    return paths


def audio_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["audio", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_planted_lines_under_speech_are_found_within_1_hz_on_the_fs_over_32_grid(
    files, capsys, tmp_path
):
    code, report = audio_json(capsys, str(files["planted"]), "--out", str(tmp_path / "r"))
    assert code == 1 and report["verdict"] == "fail"
    entry = report["files"][0]
    grid = entry["grid"]
    assert grid["factor"] == 32
    assert abs(grid["spacing_hz"] - FS / 32) < 0.5
    assert abs(grid["fitted_spacing_hz"] - FS / 32) < 0.5
    found = {round(line["freq_hz"] / (FS / 32)): line for line in entry["lines"]}
    assert sorted(found) == PLANTED
    n = entry["analysis"]["frame"]
    # Each line's power against the file's (speech + all planted lines, frame means removed).
    level = PLANTED_DB - 10 * math.log10(1 + len(PLANTED) * 10 ** (PLANTED_DB / 10))
    # In the pauses only the room noise remains: white, NOISE_DB under the speech, so its
    # power per bin is noise / (n / 2); prominence = line / (per-bin floor · ENBW).
    quiet = PLANTED_DB - NOISE_DB - 10 * math.log10(2 / n * enbw(n))
    for m, line in found.items():
        assert abs(line["freq_hz"] - m * FS / 32) < 1.0
        assert line["on_grid"] and line["harmonic"] == m and line["stationary"]
        assert line["level_db"] == pytest.approx(level, abs=0.3)
        assert line["quiet_prominence_db"] == pytest.approx(quiet, abs=1.5)
        assert line["stationarity"]["drift_bins"] < 0.2
    tonal = next(f for f in report["findings"] if f["check"] == "tonal")
    assert tonal["severity"] == "fail" and "fs/32" in tonal["message"]


def test_the_same_speech_alone_passes_with_no_grid(files, capsys, tmp_path):
    code, report = audio_json(capsys, str(files["speech"]), "--out", str(tmp_path / "r"))
    assert code == 0 and report["verdict"] == "pass"
    entry = report["files"][0]
    assert entry["grid"] is None and entry["lines"] == []
    # Pitch harmonics that do stand out move with the pitch: many bins of drift.
    assert all(line["stationarity"]["drift_bins"] > 1.5 for line in entry["rejected_lines"])


def test_a_ten_harmonic_tone_with_2_percent_vibrato_passes_with_no_grid(files, capsys, tmp_path):
    code, report = audio_json(capsys, str(files["vibrato"]), "--out", str(tmp_path / "r"))
    assert code == 0 and report["verdict"] == "pass"
    entry = report["files"][0]
    assert entry["grid"] is None
    # Sinusoidal FM keeps a carrier at exactly h · 220 Hz; where that is a multiple p·fs/q
    # (220 · 5 = 44/441 fs) it is locked, alone on its grid: information, not a grid.
    assert all(line["freq_hz"] % 220 == pytest.approx(0, abs=1e-6) for line in entry["lines"])
    fundamental = min(entry["rejected_lines"], key=lambda line: abs(line["freq_hz"] - 220))
    bin_hz = entry["analysis"]["bin_hz"]
    # Sinusoidal FM of peak deviation 2 % has an RMS deviation of 0.02 · f0 / √2.
    expected = 0.02 * 220 / math.sqrt(2) / bin_hz
    assert fundamental["stationarity"]["drift_bins"] == pytest.approx(expected, rel=0.05)


def test_a_stereo_24_bit_wav_and_a_flac_of_it_give_the_same_verdict_in_one_report(
    files, capsys, tmp_path
):
    args = (str(files["stereo_wav"]), str(files["stereo_flac"]), "--out", str(tmp_path / "r"))
    code, report = audio_json(capsys, *args)
    assert code == 1
    wav, flac = report["files"]
    assert (wav["format"], wav["subtype"], wav["channels"]) == ("WAV", "PCM_24", 2)
    assert (flac["format"], flac["subtype"], flac["channels"]) == ("FLAC", "PCM_24", 2)
    verdicts = {}
    for f in report["findings"]:
        verdicts.setdefault(f["stage"], []).append((f["check"], f["severity"]))
    assert verdicts[str(files["stereo_wav"])] == verdicts[str(files["stereo_flac"])]
    assert wav["grid"]["factor"] == flac["grid"]["factor"] == 32
    assert [ln["freq_hz"] for ln in wav["lines"]] == [ln["freq_hz"] for ln in flac["lines"]]
    # Channel powers 0.25 (1 + 0.25) of the lines, over the two channels' speech.
    level = 10 * math.log10(0.25 * 1.25 / 2 * 10 ** (PLANTED_DB / 10) * 0.01 / (0.25 * 0.01))
    for line in wav["lines"]:
        assert line["level_db"] == pytest.approx(level, abs=0.5)


def test_report_folder_holds_json_verdict_spectrum_and_spectrogram(files, tmp_path):
    out = tmp_path / "r"
    code, stdout, stderr = run("audio", str(files["planted"]), "--out", str(out))
    assert code == 1, stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [
            ".upsampcheck",
            "audio",
            "report.html",
            "report.json",
            "verdict.txt",
            "summary.png",
            "file0_planted_spectrum.png",
            "file0_planted_spectrogram.png",
            "file0_planted_lock.png",
        ]
    )
    page = (out / "report.html").read_text()
    assert page.count("data:audio/wav;base64,") == 4  # excerpt and quiet passage, 2 levels each
    assert "File: " in page and "worst locked line" in page  # the lock evidence, captioned
    assert page.count("data:image/png;base64,") == 4  # summary, spectrum, lock, spectrogram
    assert "follows the program" in page or "steady" in page  # the locked lines' table
    assert sorted(p.name for p in (out / "audio").iterdir()) == [
        "file0_excerpt.wav", "file0_excerpt_norm.wav", "file0_quiet.wav", "file0_quiet_norm.wav"
    ]  # fmt: skip
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "report.json").read_text())
    assert report["subject"]["kind"] == "audio"
    assert {"schema_version", "tool", "environment", "thresholds", "findings", "notes"} <= set(
        report
    )
    assert report["thresholds"]["line-fail-db"] == {"value": -50.0, "source": "default"}
    assert set(report["files"][0]) >= {"lines", "grid", "quiet"}
    assert "grid 689.062 Hz (fs/32)" in (out / "verdict.txt").read_text()
    assert "verdict: FAIL" in stdout


def test_threshold_flags_turn_the_planted_lines_into_a_warning(files, capsys, tmp_path):
    args = ("--line-fail-db", "-30", "--quiet-fail-db", "70", "--out", str(tmp_path / "r"))
    code, report = audio_json(capsys, str(files["planted"]), *args)
    assert code == 0
    tonal = next(f for f in report["findings"] if f["check"] == "tonal")
    assert tonal["severity"] == "warn"
    assert report["thresholds"]["line-fail-db"] == {"value": -30.0, "source": "flag"}
    code, _ = audio_json(capsys, str(files["planted"]), *args, "--fail-on", "tonal")
    assert code == 1


def test_clips_hold_the_loudest_and_the_quietest_stretch_true_and_normalised(files, signals):
    from upsampcheck.audio.check import check_audio
    from upsampcheck.config import load_audio_thresholds

    thresholds = load_audio_thresholds(flags={"clip-seconds": 0.5})
    groups, _ = check_audio([files["planted"]], thresholds).clips()
    clips = {c.name: c for group in groups.values() for c in group}
    assert sorted(clips) == [
        "file0_excerpt",
        "file0_excerpt_norm",
        "file0_quiet",
        "file0_quiet_norm",
    ]
    quiet = clips["file0_quiet"]
    assert quiet.samples.shape == (1, round(0.5 * FS)) and quiet.gain_db == 0
    # Half a second inside a pause: the planted lines and the room noise, nothing else.
    expected = len(PLANTED) * 10 ** (PLANTED_DB / 10) + 10 ** (NOISE_DB / 10)
    measured = np.mean(quiet.samples.astype(float) ** 2) / rms(signals["speech"]) ** 2
    assert 10 * math.log10(measured) == pytest.approx(10 * math.log10(expected), abs=0.5)
    norm = clips["file0_quiet_norm"]
    assert np.max(np.abs(norm.samples)) == pytest.approx(PEAK, rel=1e-5)
    centred = quiet.samples - quiet.samples.mean(axis=-1, keepdims=True)  # mean removed first
    assert norm.mean_removed and norm.gain_db == pytest.approx(
        20 * math.log10(PEAK / np.max(np.abs(centred)))
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "text.wav").write_text("not audio at all\n" * 20)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "folder.wav").mkdir()
    os.mkfifo(folder / "fifo.wav")
    x = np.ones(50000, dtype=np.float32)
    x[30000] = np.inf
    sf.write(folder / "inf.wav", x, 8000, subtype="FLOAT")
    sf.write(folder / "short.wav", np.zeros(200), 8000)
    sf.write(folder / "ok.wav", np.zeros(10), 8000)
    data = bytearray((folder / "ok.wav").read_bytes())
    data[24:28] = (0).to_bytes(4, "little")  # a sample rate of 0 Hz in the header
    (folder / "rate0.wav").write_bytes(bytes(data))
    sf.write(folder / "whole.flac", np.random.default_rng(0).uniform(-0.5, 0.5, 80000), 8000)
    flac = (folder / "whole.flac").read_bytes()
    (folder / "cut.flac").write_bytes(flac[: len(flac) // 2])
    (folder / "locked.wav").write_bytes((folder / "whole.flac").read_bytes())
    os.chmod(folder / "locked.wav", 0)
    return folder


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("missing.wav", "no such file"),
        ("folder.wav", "is a directory"),
        ("fifo.wav", "not a regular file"),
        ("empty.wav", "empty file"),
        ("text.wav", "not an audio file"),
        ("inf.wav", "3.750 s, channel 1) is inf"),
        ("short.wav", "too short"),
        ("rate0.wav", "rate0.wav:"),
        ("cut.flac", "cannot decode"),
        pytest.param(
            "locked.wav",
            "permission denied",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file"),
        ),
    ],
)
def test_bad_files_exit_2_in_one_line_naming_the_file(bad_files, name, says, capsys, tmp_path):
    code = main(["audio", str(bad_files / name), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("upsampcheck: error: ")
    assert str(bad_files / name) in err and says in err
    assert not (tmp_path / "r").exists()


def test_a_bad_file_after_a_good_one_is_refused_before_any_work(files, bad_files, capsys, tmp_path):
    code = main(
        ["audio", str(files["speech"]), str(bad_files / "text.wav"), "--out", str(tmp_path)]
    )
    assert code == 2 and "text.wav: not an audio file" in capsys.readouterr().err


def test_an_unknown_audio_config_key_is_a_usage_error(files, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[audio]\nline-fail-dB = -40\n")
    code = main(
        ["audio", str(files["speech"]), "--config", str(config), "--out", str(tmp_path / "r")]
    )
    assert code == 2 and "unknown [audio] key 'line-fail-dB'" in capsys.readouterr().err


def test_audio_help_shows_examples_without_importing_torch_numpy_or_matplotlib():
    code = (
        "import sys; from upsampcheck.cli import main; rc = main(['audio', '--help']); "
        "heavy = [m for m in ('torch', 'matplotlib', 'numpy', 'soundfile') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and "HEAVY []" in proc.stdout
    assert "Examples" in proc.stdout and "--quiet-fail-db" in proc.stdout


def test_the_python_api_returns_one_report_for_several_files(files):
    from upsampcheck import check_audio

    report = check_audio([files["planted"], str(files["speech"])])
    assert report.verdict == "fail" and report.exit_code == 1
    planted, alone = report.files
    assert planted.grid.factor == 32 and alone.grid is None
    assert report.to_json()["subject"] == {
        "kind": "audio",
        "name": "2 files",
        "files": [str(files["planted"]), str(files["speech"])],
    }
    groups, _ = report.clips()
    assert len(groups) == 2 and sum(len(g) for g in groups.values()) == 8


def test_audio_runs_without_importing_torch(tmp_path):
    path = tmp_path / "tone.wav"
    t = np.arange(48000 * 3) / 48000
    sf.write(str(path), 0.1 * np.sin(2 * np.pi * 440 * t), 48000)
    code = (
        "import sys; from upsampcheck.cli import main; "
        f"rc = main(['audio', {str(path)!r}, '--no-plots', '--out', {str(tmp_path / 'r')!r}]); "
        "print('TORCH', 'torch' in sys.modules); sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr
    assert "TORCH False" in proc.stdout


def test_audio_help_shows_the_bracketed_config_table_and_every_threshold_default():
    proc = subprocess.run(
        [sys.executable, "-m", "upsampcheck", "audio", "--help"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"},
    )  # fmt: skip
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "whose [audio] table overrides pyproject.toml" in text
    assert "the [audio] table of --config, [tool.upsampcheck.audio] in" in text
    for flag, default in [
        ("--line-fail-db", "[default: -50 dB]"),
        ("--line-warn-db", "[default: -70 dB]"),
        ("--quiet-fail-db", "[default: 20 dB]"),
        ("--quiet-warn-db", "[default: 10 dB]"),
        ("--line-prominence-db", "[default: 10 dB]"),
        ("--fail-on", "[default: none]"),
    ]:
        assert default in text.split(flag, 1)[1].split("--", 1)[0]


def test_several_files_are_files_in_the_table_and_the_verdict(files, tmp_path):
    copies = []
    for i in range(4):
        copies.append(tmp_path / f"ms_mg_{i}.wav")
        copies[-1].write_bytes(files["planted"].read_bytes())
    out = tmp_path / "r"
    code, stdout, _ = run("audio", *map(str, copies), "--no-plots", "--out", str(out))
    assert code == 1
    assert "4 files" in stdout and "4 stages" not in stdout and "┃ file " in stdout
    verdict = (out / "verdict.txt").read_text()
    assert "4 files: " in verdict and "4 stages" not in verdict


@pytest.mark.parametrize(
    "order",
    [
        ("upsampcheck.report.audio", "upsampcheck.audio.check"),
        ("upsampcheck.audio.check", "upsampcheck.report.audio"),
        ("upsampcheck.audio.results", "upsampcheck.report.audio_findings"),
    ],
)
def test_the_audio_package_and_its_report_import_in_any_order(order):
    """No import circle: the report imports only the plain data of upsampcheck.audio.results,
    and that only for type checking."""
    code = "; ".join(f"import {name}" for name in order)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import ast
    from pathlib import Path

    import upsampcheck.report

    folder = Path(upsampcheck.report.__file__).parent
    for name in ("audio.py", "audio_findings.py"):
        tree = ast.parse((folder / name).read_text())
        runtime = [  # module level, outside `if TYPE_CHECKING:`
            (node.level, node.module)
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module
        ]
        assert not [
            m for level, m in runtime
            if (level == 2 and m.split(".")[0] == "audio") or m.startswith("upsampcheck.audio")
        ], (name, runtime)  # fmt: skip
