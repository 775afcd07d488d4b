"""The Python API as a caller meets it: every name a caller needs is exported, every parameter
and field is documented, ``Thresholds`` takes keyword overrides, and one call writes the
report folder the command line writes."""

from __future__ import annotations

import inspect
import json
import re

import pytest

import upsampcheck
from upsampcheck import api


def documented(obj, names: list[str]) -> list[str]:
    """The names that ``obj``'s docstring does not mention as ``name:`` (Args/Attributes)."""
    doc = inspect.getdoc(obj) or ""
    return [n for n in names if not re.search(rf"^\s*{re.escape(n)}:", doc, re.M)]


@pytest.mark.parametrize("function", [api.check_model, api.check_layer])
def test_every_parameter_of_the_check_functions_is_documented(function):
    names = list(inspect.signature(function).parameters)
    assert documented(function, names) == []


@pytest.mark.parametrize("cls", [api.LayerSpec, api.Thresholds])
def test_every_field_of_the_specs_is_documented(cls):
    import dataclasses

    assert documented(cls, [f.name for f in dataclasses.fields(cls)]) == []


def test_the_types_a_caller_needs_are_exported_from_the_package():
    for name in ("Finding", "StageResult", "UsageError", "AudioThresholds", "write_report"):
        assert getattr(upsampcheck, name) is getattr(api, name)
    assert upsampcheck.API == set(api.__all__)


def test_thresholds_take_keyword_overrides_and_the_shipped_defaults_for_the_rest():
    t = upsampcheck.Thresholds(tonal_fail_db=-30, fail_on=["filtering"])
    assert t.tonal_fail_db == -30.0 and t.fail_on == ("filtering",)
    assert t.tonal_warn_db == -60.0 and t.offset_warn_db == -40.0  # configs/default.toml
    with pytest.raises(upsampcheck.UsageError, match="tonal-fail-db"):
        upsampcheck.Thresholds(tonal_fail_db=float("nan"))
    # the thresholds reach the verdict: the -10.0 dB line of a ones kernel, length 5, stride 4,
    # neither fails nor warns when the warning starts at -5 dB
    loose = upsampcheck.Thresholds(tonal_fail_db=0.0, tonal_warn_db=-5.0)
    five = upsampcheck.LayerSpec("transposed", stride=4, length=5, init="ones", bias=False)
    report = upsampcheck.check_layer(five, thresholds=loose)
    tonal = next(f for f in report.findings if f.check == "tonal")
    assert tonal.severity == "info" and report.verdict == "pass"  # -10.0 dB < -5 dB warn


def test_write_report_writes_the_folder_the_command_line_writes(tmp_path):
    spec = upsampcheck.LayerSpec("transposed", stride=4, length=5, init="ones", bias=False)
    report = upsampcheck.check_layer(spec)
    folder = upsampcheck.write_report(report, tmp_path / "r", plots=False)
    data = json.loads((folder / "report.json").read_text())
    assert data["verdict"] == "fail" and data["exit_code"] == 1
    assert (folder / "verdict.txt").read_text().startswith("upsampcheck")
    line = max(data["stages"][0]["tonal"]["lines"], key=lambda ln: ln["level_db"])
    assert line["freq_hz"] == pytest.approx(4000.0) and line["level_db"] == pytest.approx(
        -10.0, abs=0.05
    )  # 20 log10((sqrt(2)/4) / sqrt(5/4))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep\n")
    with pytest.raises(upsampcheck.UsageError):
        upsampcheck.write_report(report, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep\n"
