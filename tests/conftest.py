"""Shared helpers: run the CLI in-process and read what it printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from upsampcheck.cli import main

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


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
