"""Baselines: write, read, compare and gate on regressions (upsampcheck.report.baseline)."""

from __future__ import annotations

import copy
import json

import pytest

from upsampcheck.check import check_layer
from upsampcheck.errors import UsageError
from upsampcheck.report.baseline import (
    apply_baseline,
    compare,
    make_baseline,
    read_baseline,
    write_baseline,
)
from upsampcheck.subjects.layers import LayerSpec


def _report(length: int, **spec) -> dict:
    return check_layer(LayerSpec("transposed", 4, length, **spec), 16000.0, seed=0).to_json()


@pytest.fixture(scope="module")
def default_l5() -> dict:
    """Default init, L=5, S=4: a tonal fail (lines at 4 and 8 kHz) plus DC from the bias."""
    return _report(5)


@pytest.fixture(scope="module")
def ones_l8() -> dict:
    """Ones init, L=8, S=4, no bias: tone-free."""
    return _report(8, bias=False, init="ones")


@pytest.fixture(scope="module")
def ones_l5() -> dict:
    """Ones init, L=5, S=4, no bias: lines at 4000 and 8000 Hz."""
    return _report(5, bias=False, init="ones")


def test_make_baseline_keeps_gated_measurements_per_stage(default_l5):
    base = make_baseline(default_l5)
    assert base["schema_version"] == 1 and base["format"] == "upsampcheck-baseline"
    assert base["tool"]["version"] == default_l5["tool"]["version"]
    assert base["subject"] == default_l5["subject"]
    stage = default_l5["stages"][0]
    entry = base["stages"][stage["name"]]
    assert (entry["kind"], entry["factor"], entry["fs_in_hz"]) == ("transposed", 4, 4000.0)
    assert [ln["freq_hz"] for ln in entry["lines"]] == [4000.0, 8000.0]
    assert set(entry["lines"][0]) == {"freq_hz", "level_db", "probe"}
    assert entry["max_level_db"] == stage["tonal"]["max_level_db"]
    assert entry["response_db"] == stage["filtering"]["response_db"]
    assert entry["image_rejection_db"] == stage["replicas"]["image_rejection_db"]
    assert entry["dc_db"] == stage["offset"]["dc_db"]


def test_unchanged_failing_report_passes_against_its_own_baseline(default_l5, tmp_path):
    assert default_l5["verdict"] == "fail"
    path = tmp_path / "ci" / "baseline.json"
    write_baseline(default_l5, path)
    base = read_baseline(path)
    assert compare(default_l5, base) == []
    gated = apply_baseline(default_l5, base)
    assert (gated["verdict"], gated["exit_code"]) == ("pass", 0)
    tonal = next(f for f in gated["findings"] if f["check"] == "tonal")
    assert tonal["severity"] == "info"
    assert tonal["message"].endswith(" (in baseline)")
    assert len(gated["findings"]) == len(default_l5["findings"])
    assert default_l5["verdict"] == "fail"  # the input report is not modified


def test_new_lines_fail_against_a_tone_free_baseline(ones_l8, ones_l5):
    assert ones_l8["stages"][0]["tonal"]["lines"] == []
    regressions = compare(ones_l5, make_baseline(ones_l8))
    new = [f for f in regressions if f["check"] == "tonal"]
    assert [f["freq_hz"] for f in new] == [4000.0, 8000.0]
    assert all(f["severity"] == "fail" and "new tonal line" in f["message"] for f in new)
    assert all(f["stage"] == "transposed" and f["cause"] and f["fix"] for f in new)
    gated = apply_baseline(ones_l5, make_baseline(ones_l8))
    assert (gated["verdict"], gated["exit_code"]) == ("fail", 1)
    original = next(f for f in gated["findings"] if f["check"] == "tonal")
    assert original["severity"] == "fail"  # a regressed check keeps its own fail


def test_quieter_lines_pass_and_are_reported_as_improvements(default_l5):
    quieter = copy.deepcopy(default_l5)
    for line in quieter["stages"][0]["tonal"]["lines"]:
        line["level_db"] -= 10.0
    assert compare(quieter, make_baseline(default_l5)) == []
    found = compare(quieter, make_baseline(default_l5), improvements=True)
    assert [(f["check"], f["severity"]) for f in found] == [("tonal", "info")] * 2
    assert all("quieter" in f["message"] for f in found)
    gated = apply_baseline(quieter, make_baseline(default_l5))
    assert gated["verdict"] == "pass"
    assert any("2 improvement(s)" in note for note in gated["notes"])


def test_louder_line_beyond_tolerance_fails_within_tolerance_passes(default_l5):
    base = make_baseline(default_l5)
    louder = copy.deepcopy(default_l5)
    louder["stages"][0]["tonal"]["lines"][1]["level_db"] += 1.5
    (regression,) = compare(louder, base, tolerance_db=1.0)
    assert regression["check"] == "tonal" and regression["freq_hz"] == 8000.0
    assert "louder" in regression["message"]
    assert compare(louder, base, tolerance_db=2.0) == []


def test_line_matching_allows_half_percent_and_needs_same_probe(default_l5):
    base = make_baseline(default_l5)
    shifted = copy.deepcopy(default_l5)
    lines = shifted["stages"][0]["tonal"]["lines"]
    lines[0]["freq_hz"] += 19.0  # within 0.5 % of 4000 Hz
    assert compare(shifted, base) == []
    lines[0]["freq_hz"] += 2.0  # 21 Hz away: a new line
    assert [f["freq_hz"] for f in compare(shifted, base)] == [4021.0]
    other_probe = copy.deepcopy(default_l5)
    other_probe["stages"][0]["tonal"]["lines"][0]["probe"] = "noise"
    assert [f["freq_hz"] for f in compare(other_probe, base)] == [4000.0]


def test_worse_droop_images_and_offset_fail(default_l5):
    base = make_baseline(default_l5)
    worse = copy.deepcopy(default_l5)
    stage = worse["stages"][0]
    stage["filtering"]["response_db"]["0.9"] -= 2.0
    stage["replicas"]["image_rejection_db"] += 2.0
    stage["offset"]["dc_db"] += 2.0
    found = compare(worse, base)
    assert [f["check"] for f in found] == ["filtering", "replicas", "offset"]
    assert found[0]["freq_hz"] == pytest.approx(0.9 * 4000.0 / 2)
    better = copy.deepcopy(default_l5)
    better["stages"][0]["filtering"]["response_db"]["0.9"] += 2.0
    better["stages"][0]["offset"]["dc_db"] -= 20.0
    assert compare(better, base) == []


def test_dc_changes_below_the_line_floor_are_not_regressions(ones_l8):
    base = make_baseline(ones_l8)
    assert ones_l8["stages"][0]["offset"]["dc_db"] == -200.0
    dusty = copy.deepcopy(ones_l8)
    dusty["stages"][0]["offset"]["dc_db"] = -150.0
    assert compare(dusty, base) == []
    dusty["stages"][0]["offset"]["dc_db"] = -80.0
    assert [f["check"] for f in compare(dusty, base)] == ["offset"]


def test_new_vanished_or_changed_stage_fails(default_l5):
    base = make_baseline(default_l5)
    renamed = copy.deepcopy(default_l5)
    renamed["stages"][0]["name"] = "upsample.1"
    found = compare(renamed, base)
    assert [(f["check"], f["stage"]) for f in found] == [
        ("baseline", "upsample.1"),
        ("baseline", "transposed"),
    ]
    assert "not in the baseline" in found[0]["message"]
    assert "missing from this report" in found[1]["message"]
    changed = copy.deepcopy(default_l5)
    changed["stages"][0]["factor"] = 2
    (finding,) = compare(changed, base)
    assert finding["check"] == "baseline" and "changed since the baseline" in finding["message"]
    gated = apply_baseline(changed, base)
    assert gated["verdict"] == "fail"
    tonal = next(f for f in gated["findings"] if f["check"] == "tonal")
    assert tonal["severity"] == "fail"  # a changed stage is not covered by the baseline


def test_unknown_stage_fields_are_ignored(default_l5):
    extended = copy.deepcopy(default_l5)
    extended["stages"][0]["attributed_lines"] = [{"freq_hz": 1.0}]
    base = make_baseline(extended)
    assert "attributed_lines" not in base["stages"]["transposed"]
    assert compare(extended, base) == []


def test_negative_tolerance_is_usage_error(default_l5):
    with pytest.raises(UsageError):
        compare(default_l5, make_baseline(default_l5), tolerance_db=-1.0)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"format": "upsampcheck-baseline", "schema_version": 2, "stages": {}}',
        '{"format": "upsampcheck-baseline", "schema_version": 1, "stages": []}',
        '{"format": "upsampcheck-baseline", "schema_version": 1, "stages": {"s": {"lines": 3}}}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_corrupt_baseline_file_is_one_line_usage_error(tmp_path, content):
    path = tmp_path / "baseline.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(UsageError) as err:
        read_baseline(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_baseline_file_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_baseline(tmp_path / "nope.json")


def test_report_json_given_as_baseline_is_usage_error(default_l5, tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(default_l5))
    with pytest.raises(UsageError, match="report.json, not a baseline"):
        read_baseline(path)


def test_write_baseline_leaves_no_temporary_files(default_l5, tmp_path):
    write_baseline(default_l5, tmp_path / "b.json")
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]
    assert json.loads((tmp_path / "b.json").read_text()) == make_baseline(default_l5)
