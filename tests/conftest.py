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
