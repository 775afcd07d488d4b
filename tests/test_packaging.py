"""Packaging: the floors CI installs are the ones declared; configs/ ships in the wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def load_floors_script():
    spec = importlib.util.spec_from_file_location("ci_floors", ROOT / ".ci" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_installs_exactly_the_declared_floors():
    floors = load_floors_script().floors()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    expected = {
        d.split(">=")[0].strip().lower(): d.split(">=")[1].split(";")[0].strip()
        for d in declared
        if "python_version" not in d
    }
    assert floors == expected
    assert floors["typer"] == "0.16.1"  # 0.12 exits 3 on every command with Click >= 8.2
    assert "python .ci/floors.py" in (ROOT / ".ci" / "run").read_text()
