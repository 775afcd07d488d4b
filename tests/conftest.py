"""Shared helpers: run the CLI in-process and read what it printed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from upsampcheck.cli import main

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N`: N workers share the cores
    torch.set_num_threads(
        max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    )


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys, tmp_path):
    """``cli("layer", "--stride", "4")`` runs ``upsampcheck`` in-process, report into tmp."""

    def run(*args: str, out: Path | None = None) -> Result:
        argv = list(args)
        if "--out" not in argv and "-o" not in argv and argv and argv[0] in ("layer", "model"):
            argv += ["--out", str(out or tmp_path / "report")]
        code = main(argv)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture(
    params=[
        "cpu",
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
        ),
    ]
)
def device(request) -> str:
    """Each test that takes it runs on the CPU, and on CUDA (skipped where there is none)."""
    return request.param


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry below ``root`` (links not followed): a file's bytes, a link's target,
    ``"<dir>"``, or another kind's mode; compared before and after a hostile run to prove
    nothing was touched."""
    import os

    found: dict[str, bytes | str] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[rel] = "<dir>"
            elif path.is_file():
                found[rel] = path.read_bytes()
            else:  # a FIFO or a device: never opened (a read could block)
                found[rel] = f"<mode {path.lstat().st_mode:o}>"
    return found


@pytest.fixture
def user_home(tmp_path, monkeypatch) -> Path:
    """A fake home folder holding a user's files (HOME redirected to it); compare
    :func:`snapshot` of it before and after the run under test."""
    home = make_home(tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    return home


def make_home(home: Path) -> Path:
    """A user's files below ``home``: an SSH key, a text file, a folder of notes."""
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_bytes(b"PRIVATE KEY\n")
    (home / "victim.txt").write_text("keep me\n")
    (home / "work").mkdir()
    (home / "work" / "notes.md").write_text("# notes\n")
    return home


def says_fail(text: str) -> bool:
    """Whether a (hand-edited) report's verdict or findings say it fails, as far as it
    parses: ``trend`` must never pass such a report."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if not isinstance(doc, dict):
        return False
    findings = doc.get("findings")
    failing = isinstance(findings, list) and any(
        isinstance(f, dict) and f.get("severity") == "fail" for f in findings
    )
    return doc.get("verdict") == "fail" or failing


def run_model_cli(tmp: Path, *args: str) -> dict:
    """``upsampcheck model ... --no-plots`` in-process on an 80-column terminal: its exit code,
    stdout, verdict.txt and report.json."""
    import io
    from contextlib import redirect_stdout

    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "80")
        with redirect_stdout(stdout):
            code = main(["model", *args, "--no-plots", "--out", str(tmp)])
    return {
        "code": code,
        "stdout": stdout.getvalue(),
        "text": (tmp / "verdict.txt").read_text(),
        "report": json.loads((tmp / "report.json").read_text()),
    }


@pytest.fixture(scope="session")
def aliasfree_run(tmp_path_factory) -> dict:
    """The 77-stage BigVGAN-like vocoder of ``aliasfree.py`` checked once for the session (its
    check is the suite's longest): :func:`run_model_cli`'s dict plus ``calls``, the stages
    driven alone, in order."""
    from upsampcheck.model import stages as model_stages

    calls: list[str] = []
    real = model_stages.measure_alone
    out = tmp_path_factory.mktemp("aliasfree") / "report"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            model_stages,
            "measure_alone",
            lambda stage, *a: calls.append(stage.name) or real(stage, *a),
        )
        run = run_model_cli(out, "--arch", "aliasfree:AliasFreeVocoder", "--sample-rate", "22050")
    return {**run, "calls": calls}
