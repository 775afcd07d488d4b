"""JUnit XML and GitHub Actions output (upsampcheck.outputs.formats)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from upsampcheck.check import check_layer
from upsampcheck.outputs.folder import merge_junit
from upsampcheck.outputs.formats import (
    escape_data,
    escape_property,
    github_actions,
    to_github,
    to_junit,
    write_step_summary,
)
from upsampcheck.subjects.layers import LayerSpec


@pytest.fixture(scope="module")
def failing_report() -> dict:
    """Default-init transposed L=5 S=4: tonal fail, replicas and offset warnings."""
    return check_layer(LayerSpec("transposed", 4, 5), 16000.0).to_json()


def _finding(check: str, severity: str, stage: str = "up.0", **extra) -> dict:
    return {
        "check": check,
        "severity": severity,
        "stage": stage,
        "freq_hz": extra.get("freq_hz"),
        "level_db": extra.get("level_db"),
        "message": extra.get("message", f"{check} {severity}"),
        "cause": extra.get("cause", ""),
        "fix": extra.get("fix", ""),
    }


def _two_stage_report() -> dict:
    findings = [
        _finding("tonal", "fail", "up.0", freq_hz=4000.0, level_db=-3.0, cause="c0", fix="f0"),
        _finding("filtering", "pass", "up.0"),
        _finding("tonal", "warn", "up.1", message="quiet line: 50%, a<b>"),
        _finding("offset", "fail", "up.1", cause="bias", fix="drop it"),
        _finding("replicas", "info", "up.1"),
    ]
    stages = [{"index": i, "name": f"up.{i}", "unknown_field": [1]} for i in range(2)]
    return {
        "subject": {"kind": "model", "name": "vocoder"},
        "stages": stages,
        "findings": findings,
        "notes": ["a note"],
        "verdict": "fail",
        "exit_code": 1,
    }


def test_junit_parses_with_one_testcase_per_stage_and_check(failing_report):
    root = ET.fromstring(to_junit(failing_report))
    suites = root.findall("testsuite")
    assert len(suites) == 1
    assert suites[0].get("name") == "layer transposed"
    cases = suites[0].findall("testcase")
    pairs = [(c.get("classname"), c.get("name")) for c in cases]
    assert pairs == [("transposed", c) for c in ("tonal", "filtering", "replicas", "offset")]
    assert suites[0].get("tests") == root.get("tests") == "4"
    assert suites[0].get("failures") == root.get("failures") == "1"


def test_junit_fail_finding_is_failure_with_cause_and_fix(failing_report):
    root = ET.fromstring(to_junit(failing_report))
    (tonal,) = [c for c in root.iter("testcase") if c.get("name") == "tonal"]
    failure = tonal.find("failure")
    assert failure is not None and failure.get("type") == "fail"
    finding = next(f for f in failing_report["findings"] if f["check"] == "tonal")
    assert failure.get("message") == finding["message"]
    assert f"cause: {finding['cause']}" in failure.text
    assert f"fix: {finding['fix']}" in failure.text


def test_junit_warn_passes_with_message_and_severity_in_system_out(failing_report):
    root = ET.fromstring(to_junit(failing_report))
    (offset,) = [c for c in root.iter("testcase") if c.get("name") == "offset"]
    finding = next(f for f in failing_report["findings"] if f["check"] == "offset")
    assert finding["severity"] == "warn"
    assert offset.find("failure") is None and offset.find("properties") is None
    assert f"[warn] {finding['message']}" in offset.find("system-out").text


def test_junit_validates_against_junit_10_xsd(failing_report):
    xmlschema = pytest.importorskip("xmlschema")
    schema = xmlschema.XMLSchema(Path(__file__).parent / "data" / "junit-10.xsd")
    for report in (failing_report, _two_stage_report()):
        schema.validate(to_junit(report))
    merged = merge_junit([to_junit(failing_report), to_junit(_two_stage_report())])
    schema.validate(merged)
    root = ET.fromstring(merged)
    assert (root.get("tests"), root.get("failures")) == ("9", "3")


def test_junit_counts_failures_per_testcase_and_escapes_markup():
    report = _two_stage_report()
    text = to_junit(report, name="ci")
    root = ET.fromstring(text)
    assert root.get("name") == "ci"
    suite = root.find("testsuite")
    assert suite.get("name") == "model vocoder"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "0")
    failed = [
        (c.get("classname"), c.get("name"))
        for c in suite.iter("testcase")
        if c.find("failure") is not None
    ]
    assert failed == [("up.0", "tonal"), ("up.1", "offset")]
    warned = next(
        c
        for c in suite.iter("testcase")
        if c.get("classname") == "up.1" and c.get("name") == "tonal"
    )
    assert "quiet line: 50%, a<b>" in warned.find("system-out").text
    assert suite.find("system-out").text == "a note"


def test_junit_is_deterministic_and_timestamp_free(failing_report):
    text = to_junit(failing_report)
    assert text == to_junit(failing_report)
    root = ET.fromstring(text)
    assert all("timestamp" not in e.attrib for e in root.iter())
    assert {e.get("time") for e in root.iter() if e.tag.startswith("test")} == {"0"}


def test_junit_drops_characters_xml_cannot_hold():
    report = _two_stage_report()
    report["findings"][0]["message"] = "bad\x00\x1bchars"
    failure = ET.fromstring(to_junit(report)).find(".//failure")
    assert failure.get("message") == "badchars"


def test_escape_data_escapes_percent_cr_lf_exactly():
    assert escape_data("50%") == "50%25"
    assert escape_data("a\rb") == "a%0Db"
    assert escape_data("a\nb") == "a%0Ab"
    assert escape_data("%0A\r\n") == "%250A%0D%0A"
    assert escape_data("a: b, c") == "a: b, c"


def test_escape_property_also_escapes_colon_and_comma_exactly():
    assert escape_property("a:b") == "a%3Ab"
    assert escape_property("a,b") == "a%2Cb"
    assert escape_property("100%: x,\r\ny") == "100%25%3A x%2C%0D%0Ay"


def test_github_commands_error_for_fail_warning_for_warn_nothing_else():
    report = _two_stage_report()
    report["subject"]["path"] = "ckpt/gen,v1.pt"
    commands, _ = to_github(report)
    lines = commands.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["::error", "::warning", "::error"]
    assert lines[0] == (
        "::error title=upsampcheck tonal%3A up.0,file=ckpt/gen%2Cv1.pt::"
        "tonal fail%0Afrequency: 4000.0 Hz, level: -3.0 dB%0Acause: c0%0Afix: f0"
    )
    assert lines[1] == (
        "::warning title=upsampcheck tonal%3A up.1,file=ckpt/gen%2Cv1.pt::quiet line: 50%25, a<b>"
    )


def test_github_commands_omit_file_without_one(failing_report):
    commands, _ = to_github(failing_report)
    assert commands.startswith("::error title=upsampcheck tonal%3A transposed::")
    assert "file=" not in commands
    assert commands.count("\n") == 3  # one fail, two warnings, nothing for pass


def test_github_summary_has_verdict_heading_table_and_png(failing_report):
    _, md = to_github(failing_report, summary_png="out/summary.png")
    lines = md.splitlines()
    assert lines[0] == "## upsampcheck: FAIL (layer transposed)"
    assert "| stage | check | severity | freq Hz | level dB | message |" in lines
    rows = [line for line in lines if line.startswith("| transposed |")]
    assert len(rows) == len(failing_report["findings"])
    assert rows[0].startswith("| transposed | tonal | **fail** | 4000.0 | -2.6 |")
    assert "out/summary.png" in md


def test_github_summary_escapes_pipes_and_newlines_in_cells():
    report = _two_stage_report()
    report["findings"][0]["message"] = "a | b\nc"
    _, md = to_github(report)
    assert "| a \\| b c |" in md


def test_step_summary_appended_when_github_step_summary_set(tmp_path, monkeypatch):
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert write_step_summary("## upsampcheck: PASS") is True
    assert target.read_text() == "earlier step\n## upsampcheck: PASS\n"


def test_step_summary_skipped_when_unset(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert write_step_summary("x") is False
    assert write_step_summary("x", env={"GITHUB_STEP_SUMMARY": ""}) is False


def test_step_summary_unwritable_returns_false(tmp_path):
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "missing-dir" / "summary.md")}
    assert write_step_summary("x", env=env) is False


def test_github_actions_detected_only_for_true(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert github_actions() is True
    assert github_actions({"GITHUB_ACTIONS": "false"}) is False
    assert github_actions({}) is False
