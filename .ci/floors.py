#!/usr/bin/env python3
"""CI step: install the declared dependency floors and run the main job against them.

Reads ``[project].dependencies`` from pyproject.toml, installs every ``name>=X`` as
``name==X`` into a fresh virtual environment that also sees the folder this interpreter
imports torch and torchaudio from (a ``.pth`` file, so it works whether this interpreter is a
system Python or itself a virtual environment; torch and torchaudio, hundreds of MB, are not
downloaded again: their floors are the ones this job cannot prove, and it says so), then runs
``upsampcheck --help``, ``layer --help`` and the README's main job from the wheel built from
this checkout, which must hold ``configs/`` as ``upsampcheck/configs`` and ``py.typed`` (the
shipped specs are found there). Exit 0 when the job gives its verdict (exit 1 is the failing
layer's verdict), else the failing step's code.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
TOO_LARGE = {"torch", "torchaudio"}
"""Floors not re-installed here (the wheels are huge): the installed versions are used."""
MAIN_JOB = ["layer", "--type", "transposed", "--length", "5", "--stride", "4"]


def floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """``{name: floor}`` for every dependency declared as ``name>=floor`` that applies here."""
    found = {}
    for spec in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        requirement, _, marker = spec.partition(";")
        if marker and "python_version < '3.11'" in marker and sys.version_info >= (3, 11):
            continue
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,\s]*)\s*", requirement)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def run(cmd: list[str], **kwargs) -> int:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, **kwargs).returncode


WHEEL_MUST_HOLD = ("upsampcheck/py.typed", "upsampcheck/configs/default.toml",
                   "upsampcheck/configs/paper/fig8_transposed.toml")  # fmt: skip


def build_wheel(folder: Path) -> Path | None:
    """``pip wheel . --no-deps``; the wheel, once checked to hold the configs and py.typed."""
    import zipfile

    if run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT)]):
        return None
    wheel = next(folder.glob("upsampcheck-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in WHEEL_MUST_HOLD if name not in names]
    if missing:
        print(f"the wheel lacks {', '.join(missing)}", file=sys.stderr)
        return None
    print(f"{wheel.name}: {len(names)} files, configs and py.typed included")
    return wheel


def see_installed_torch(python: str) -> None:
    """Let the environment of ``python`` import the torch and torchaudio this interpreter
    imports (after its own packages, so the pinned floors win)."""
    import importlib.util

    folders = sorted({str(Path(importlib.util.find_spec(n).origin).parents[1]) for n in TOO_LARGE})
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "upsampcheck-floors-torch.pth").write_text("\n".join(folders) + "\n")


def main() -> int:
    pins = [f"{n}=={v}" for n, v in floors().items() if n not in TOO_LARGE]
    print(f"floors: {', '.join(pins)} (torch/torchaudio: installed versions)")
    with tempfile.TemporaryDirectory(prefix="upsampcheck-floors-") as tmp:
        venv = Path(tmp) / "venv"
        if run([sys.executable, "-m", "venv", str(venv)]):
            return 2
        python = str(venv / "bin" / "python")
        see_installed_torch(python)
        if run([python, "-m", "pip", "install", "-q", *pins]):
            return 2
        wheel = build_wheel(Path(tmp))
        if wheel is None:
            return 2
        if run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)]):
            return 2
        names = sorted(n for n in floors() if n not in TOO_LARGE)
        show = f"from importlib.metadata import version; print([version(n) for n in {names!r}])"
        show += "; import upsampcheck; print('upsampcheck from', upsampcheck.__file__)"
        run([python, "-c", show], cwd=tmp)
        for args in (["--help"], ["layer", "--help"]):
            # Run from the temporary folder, so the wheel is imported, not the checkout.
            cmd = [python, "-m", "upsampcheck", *args]
            if code := run(cmd, stdout=subprocess.DEVNULL, cwd=tmp):
                return code
        out = Path(tmp) / "report"
        code = run([python, "-m", "upsampcheck", *MAIN_JOB, "--out", str(out)], cwd=tmp)
        if code not in (0, 1):
            return code
        if not (out / "report.html").is_file():
            print("the main job wrote no report.html", file=sys.stderr)
            return 3
    print("floors: the main job runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
