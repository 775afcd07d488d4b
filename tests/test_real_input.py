"""``model --input``: a real input through the model, its output analysed as generated audio,
every stationary line traced to the stage whose grid explains it."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from speechlike import speech

FS_IN, FS_OUT = 8000, 64000  # PlantedLine: up x4 (input rate 8 kHz), smooth x2 (32 kHz)


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "utterance.wav"
    soundfile.write(str(path), speech(FS_IN, 8.0, seed=3), FS_IN, subtype="PCM_16")
    return path


def test_a_planted_stage_line_is_attributed_to_that_stage(cli, wav):
    result = cli("model", "--arch", "model_fixtures:PlantedLine", "--sample-rate", str(FS_OUT),
                 "--input-shape", "1,4096", "--input", str(wav), "--format", "json",
                 "--no-plots")  # fmt: skip
    assert result.code == 1, result.err
    report = result.json()
    entry = report["input"]
    lines = {round(line["freq_hz"]): line["stage"] for line in entry["lines"]}
    assert {8000, 16000, 24000} <= set(lines)  # m · 8 kHz, the input rate of `up`
    assert all(lines[f] == "up" for f in (8000, 16000, 24000))
    assert entry["grid"]["spacing_hz"] == pytest.approx(FS_OUT / 8)
    tonal = [f for f in report["findings"] if f["message"].startswith("with --input")]
    assert any(f["check"] == "tonal" and f["stage"] == "up" for f in tonal)


def test_the_same_model_fed_its_input_without_the_offset_has_no_line(cli, wav, monkeypatch):
    import model_fixtures

    monkeypatch.setattr(model_fixtures.PlantedLine, "forward",
                        lambda self, x: self.smooth(self.up(x)))  # fmt: skip
    result = cli("model", "--arch", "model_fixtures:PlantedLine", "--sample-rate", str(FS_OUT),
                 "--input-shape", "1,4096", "--input", str(wav), "--format", "json",
                 "--no-plots")  # fmt: skip
    entry = result.json()["input"]
    assert entry["grid"] is None and not [ln for ln in entry["lines"] if ln["on_grid"]]


@pytest.mark.parametrize("kind", ["npy", "pt"])
def test_a_tensor_input_drives_a_mel_like_model(cli, tmp_path, kind):
    x = torch.from_numpy(speech(FS_IN, 8.0, seed=4)).float()[None]
    path = tmp_path / f"example.{kind}"
    np.save(path, x.numpy()) if kind == "npy" else torch.save(x, path)
    result = cli("model", "--arch", "model_fixtures:PlantedLine", "--sample-rate", str(FS_OUT),
                 "--input-shape", "1,4096", "--input", str(path), "--format", "json",
                 "--no-plots")  # fmt: skip
    lines = {round(ln["freq_hz"]): ln["stage"] for ln in result.json()["input"]["lines"]}
    assert lines.get(8000) == "up"


@pytest.mark.parametrize("content", [b"", b"not audio at all", b"\x93NUMPY junk"])
def test_a_bad_input_file_is_exit_2_in_one_line_before_any_work(cli, tmp_path, content):
    path = tmp_path / ("bad.npy" if content.startswith(b"\x93") else "bad.wav")
    path.write_bytes(content)
    result = cli("model", "--arch", "model_fixtures:PlantedLine", "--input", str(path))
    assert result.code == 2 and result.err.count("\n") == 1 and "--input" in result.err
    assert not (tmp_path / "report").exists()
