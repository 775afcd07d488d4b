"""The per-phase account adds up to the run, each second to the innermost phase; report.json's
text parses to exactly the report, curves and records one per line."""

from __future__ import annotations

import json
import math
import time

import pytest

from upsampcheck.outputs.json_text import json_text
from upsampcheck.phases import PHASES, PhaseClock


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_nested_phase_takes_its_time_from_the_phase_around_it():
    clock = PhaseClock()
    with clock.phase("measurement"):
        busy(0.03)
        with clock.phase("standalone drives"):
            busy(0.05)
        busy(0.02)
    account = clock.account()
    assert account["standalone drives"] == pytest.approx(0.05, abs=0.01)
    assert account["measurement"] == pytest.approx(0.05, abs=0.01)  # 0.03 + 0.02, not 0.10
    parts = sum(v for k, v in account.items() if k not in ("total", "start-up"))
    assert parts == pytest.approx(account["total"] - account.get("start-up", 0.0), abs=0.002)


def test_phases_come_out_in_the_data_paths_order_whatever_order_they_ran_in():
    clock = PhaseClock()
    for name in ("write", "import", "probe pass"):
        with clock.phase(name):
            pass
    assert [k for k in clock.account() if k in PHASES] == ["import", "probe pass", "write"]


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="unknown phase"):
        with PhaseClock().phase("lunch"):
            pass


def test_json_text_parses_to_the_same_values_as_json_dumps():
    report = {
        "stages": [
            {"name": "ups.0", "curve": {"fraction": [0.25, 0.5], "db": [-0.1, float("-inf")]}},
            {"name": "ups.1", "lines": [{"freq_hz": 75.0, "level_db": -5.1}], "empty": []},
        ],
        "notes": ['a "quoted" note', "ü"],
        "nothing": None,
        "nan": math.nan,
    }
    text = json_text(report)
    assert json.dumps(json.loads(text), sort_keys=True) == json.dumps(report, sort_keys=True)
    lines = text.splitlines()
    assert '        "db": [-0.1, -Infinity]' in lines  # a curve on one line
    assert '        {"freq_hz": 75.0, "level_db": -5.1}' in lines  # a record on one line
    assert lines[0] == "{" and lines[-1] == "}"


def test_torch_threads_wait_passively_only_when_other_tasks_hold_the_cores(monkeypatch):
    from upsampcheck import busy

    monkeypatch.setattr(busy, "usable_cores", lambda: 2)
    monkeypatch.setattr(busy, "other_runnable", lambda: 0)
    quiet: dict[str, str] = {}
    assert not busy.wait_passively_when_busy(quiet) and quiet == {}
    monkeypatch.setattr(busy, "other_runnable", lambda: 2)  # two CPU-bound processes beside
    loaded: dict[str, str] = {}
    assert busy.wait_passively_when_busy(loaded) and loaded == {"OMP_WAIT_POLICY": "PASSIVE"}
    chosen = {"OMP_WAIT_POLICY": "ACTIVE"}  # the user's choice stays
    assert not busy.wait_passively_when_busy(chosen) and chosen["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_wait_policy_changes_no_byte_of_the_report(tmp_path):
    import os
    import subprocess
    import sys

    reports = []
    for policy in ("ACTIVE", "PASSIVE"):
        out = tmp_path / policy
        env = {**os.environ, "OMP_WAIT_POLICY": policy}
        argv = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]
        done = subprocess.run(
            [sys.executable, "-m", "upsampcheck", *argv, "--out", str(out), "-q"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        reports.append((out / "report.json").read_bytes())
    assert reports[0] == reports[1]
