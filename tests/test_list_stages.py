"""``model --list-stages``: the stages the full check measures, at the rates it measures them,
in the time of a discovery pass, with nothing written."""

from __future__ import annotations

import json
import re

import pytest

ARCH = "tests.model_fixtures:TransposedStack"


def test_list_stages_json_gives_the_stages_factors_and_rates_the_check_measures(cli, tmp_path):
    listed = cli("model", "--arch", ARCH, "--sample-rate", "16000", "--list-stages",
                 "--format", "json")  # fmt: skip
    assert listed.code == 0, listed.err
    got = json.loads(listed.out)
    # x2 then x4 into a 16 kHz output: 2 kHz -> 4 kHz -> 16 kHz, model factor 8
    assert [(s["name"], s["op"], s["factor"], s["fs_in_hz"], s["fs_out_hz"])
            for s in got["stages"]] == [
        ("decoder.1", "ConvTranspose1d", 2.0, 2000.0, 4000.0),
        ("decoder.3", "ConvTranspose1d", 4.0, 4000.0, 16000.0),
    ]  # fmt: skip
    assert got["model_factor"] == 8.0
    assert got["input_shape"][0] == 4  # the first conv's channels
    stage_in, stage_out = got["stages"][1]["in_shape"], got["stages"][1]["out_shape"]
    assert stage_out[-1] == 4 * stage_in[-1]

    checked = cli("model", "--arch", ARCH, "--sample-rate", "16000", "--format", "json",
                  "--no-plots")  # fmt: skip
    report = json.loads(checked.out)
    assert [(s["name"], s["factor"], s["fs_in_hz"]) for s in report["stages"]] == [
        (s["name"], s["factor"], s["fs_in_hz"]) for s in got["stages"]
    ]


def test_list_stages_writes_nothing(cli, tmp_path):
    out = tmp_path / "never"
    result = cli("model", "--arch", ARCH, "--list-stages", "--out", str(out))
    assert result.code == 0, result.err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_list_stages_table_names_each_stage_and_its_rates(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    result = cli("model", "--arch", ARCH, "--sample-rate", "16000", "--list-stages")
    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if "decoder." in line]
    assert re.search(r"decoder\.1\s*│\s*ConvTranspose1d\s*│\s*2\s*│\s*2,000\s*│\s*4,000", rows[0])
    assert re.search(r"decoder\.3\s*│\s*ConvTranspose1d\s*│\s*4\s*│\s*4,000\s*│\s*16,000", rows[1])
    assert "2 upsampling stage(s), output at 16000 Hz" in result.out


def test_list_stages_honours_stage_selection(cli):
    result = cli("model", "--arch", ARCH, "--list-stages", "--stage", "decoder.3",
                 "--format", "json")  # fmt: skip
    assert [s["name"] for s in json.loads(result.out)["stages"]] == ["decoder.3"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--write-baseline", "b.json"], "--list-stages measures nothing"),
        (["--input", "x.wav"], "--list-stages measures nothing"),
    ],
)
def test_list_stages_refuses_what_it_would_drop(cli, tmp_path, extra, words):
    result = cli("model", "--arch", ARCH, "--list-stages", *extra)
    assert result.code == 2
    assert words in result.err and len(result.err.strip().splitlines()) == 1
