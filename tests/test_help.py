"""Every command's ``--help`` reads as written: no lost default, no bracketed text eaten by
the markup, no stray space before punctuation, no raw type names as metavars; ``-h`` works."""

from __future__ import annotations

import json
import re

import pytest

from upsampcheck.cli import main

COMMANDS = ["layer", "model", "repair", "trend", "audio"]


def render(capsys, monkeypatch, *argv: str) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: nothing wraps
    assert main([*argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_lost_default_eaten_bracket_or_stray_space(capsys, monkeypatch, command):
    text = render(capsys, monkeypatch, command, "--help")
    assert not re.search(r"\w \.(\s|$)", text), "a space before a full stop: a lost default?"
    assert "whose  table" not in text and "  table" not in text
    options = [line for line in text.splitlines() if line.lstrip("│ ").startswith("--")]
    assert not any("list[" in line for line in options)  # e.g. --fail-on shows CHECK
    assert "<bool>" not in text and "list[" not in text  # --help, -h and path arguments
    assert "[default: ]" not in text


def test_root_help_shows_no_type_beside_help(capsys, monkeypatch):
    text = render(capsys, monkeypatch, "--help")
    assert "<bool>" not in text
    assert re.search(r"--help\s+-h\s+Show this message", text)


@pytest.mark.parametrize(
    ("command", "metavar"), [("model", "CHECKPOINT"), ("audio", "FILE"), ("trend", "REPORT")]
)
def test_path_arguments_read_as_paths(capsys, monkeypatch, command, metavar):
    text = render(capsys, monkeypatch, command, "--help")
    assert re.search(rf"{metavar}\s+<path>\.\.\.", text)
    assert f"{metavar}]..." in text or f"{metavar}}}..." in text  # the usage line


@pytest.mark.parametrize("command", ["layer", "model"])
def test_every_threshold_flag_shows_its_default(capsys, monkeypatch, command):
    text = render(capsys, monkeypatch, command, "--help")
    for line in text.splitlines():
        if re.search(r"--(tonal|line|filtering|replicas|offset)-[a-z-]*db\b", line):
            assert "[default:" in line, line


def test_model_help_names_the_sample_rate_default_and_no_spec(capsys, monkeypatch):
    text = render(capsys, monkeypatch, "model", "--help")
    rate = next(line for line in text.splitlines() if "--sample-rate" in line)
    assert "[default: 16000" in rate
    seed = next(line for line in text.splitlines() if "--seed" in line)
    assert "spec" not in seed


def test_trend_plots_says_what_trend_writes(capsys, monkeypatch):
    text = render(capsys, monkeypatch, "trend", "--help")
    plots = next(line for line in text.splitlines() if "--plots" in line)
    assert "trend.png" in plots and "report.html" not in plots


@pytest.mark.parametrize("argv", [["-h"], *[[c, "-h"] for c in COMMANDS]])
def test_dash_h_is_help(capsys, monkeypatch, argv):
    assert "Usage: upsampcheck" in render(capsys, monkeypatch, *argv)


FAILING = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]


def test_quiet_prints_the_verdict_line_only(capsys, tmp_path):
    assert main([*FAILING, "--out", str(tmp_path / "r"), "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"verdict: FAIL (exit 1); report in {tmp_path / 'r'}\n"
    assert captured.err == ""


def test_verbose_prints_the_time_of_each_phase_and_they_add_up_to_the_run(capsys, tmp_path):
    assert main([*FAILING, "--out", str(tmp_path / "r"), "--verbose"]) == 1
    captured = capsys.readouterr()
    assert "verdict: FAIL (exit 1)" in captured.out  # the full summary as usual
    times = [ln for ln in captured.err.splitlines() if ln.startswith("upsampcheck: time: ")]
    phases = [ln.split(": ")[2] for ln in times]
    assert phases[0] == "import" and phases[-2:] == ["other", "in all"]
    assert {"measurement", "write"} <= set(phases)  # --no-plots: no figures, no page
    total = float(times[-1].split(": ")[-1].rstrip(" s"))
    parts = sum(float(ln.split(": ")[-1].rstrip(" s")) for ln in times[:-1])
    assert parts == pytest.approx(total, abs=0.05)  # the phases add up to the run
    timings = json.loads((tmp_path / "r" / "report.json").read_text())["timings"]
    assert list(timings)[0] == "import" and timings["total"] >= timings["measurement"] > 0


def test_without_verbose_the_report_has_no_timings(tmp_path):
    assert main([*FAILING, "--out", str(tmp_path / "r"), "-q"]) == 1
    assert "timings" not in json.loads((tmp_path / "r" / "report.json").read_text())


@pytest.mark.parametrize("command", ["layer", "model", "audio"])
def test_quiet_and_verbose_together_are_refused(capsys, tmp_path, command):
    files = ["x.wav"] if command == "audio" else []
    assert main([command, *files, "-q", "-v", "--out", str(tmp_path / "r")]) == 2
    assert "--quiet and --verbose" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
