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


def test_readme_shows_the_html_report_and_how_to_open_it():
    readme = (ROOT / "README.md").read_text()
    assert "![report.html" in readme and "(docs/report_html.png)" in readme
    assert (ROOT / "docs" / "report_html.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "xdg-open upsampcheck-report/report.html" in readme
    assert "pip install ./upsampcheck" not in readme and "pip install ." in readme
    assert "download.pytorch.org/whl/cpu" in readme


def test_configs_are_real_files_at_the_root_and_nothing_cites_a_missing_design_file():
    assert (ROOT / "configs" / "default.toml").is_file()
    assert not (ROOT / "configs" / "default.toml").is_symlink()
    assert len(list((ROOT / "configs" / "paper").glob("*.toml"))) >= 10
    from upsampcheck.config import default_config_path

    assert default_config_path().resolve() == (ROOT / "configs" / "default.toml").resolve()
    sources = [*ROOT.glob("upsampcheck/**/*.py"), *ROOT.glob("configs/**/*.toml"),
               *ROOT.glob("docs/*.md"), ROOT / "README.md"]  # fmt: skip
    assert not [p for p in sources if "DESIGN.md" in p.read_text()]
    assert (ROOT / "upsampcheck" / "py.typed").is_file()
