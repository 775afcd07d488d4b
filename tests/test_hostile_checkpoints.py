"""Checkpoints made to hurt (issue 18, rows 2, 3, 5, 11, 14 and 17): every one is a one-line
exit 2 that names the problem, refused before the memory or time it asks for is spent, and the
user's files (a fake HOME, :func:`conftest.snapshot`) are the same byte for byte afterwards.

The arch throughout is ``model_fixtures:OnesTransposed``: one weight ``up.weight`` of shape
(1, 1, 5), 20 bytes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from conftest import snapshot

import upsampcheck.bounds
import upsampcheck.model.check

ARCH = ["--arch", "model_fixtures:OnesTransposed"]
GIB = 2**30


def exits_2(result, tmp_path: Path, *words: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback, no raw escape, no report."""
    assert result.code == 2, result.err
    assert result.err.count("\n") == 1 and result.err.startswith("upsampcheck: error:"), result.err
    assert "Traceback" not in result.err and "\x1b" not in result.err
    for word in words:
        assert word in result.err
    assert not (tmp_path / "report").exists()


# --- row 11: --device and --input-shape -----------------------------------------------------


FAST_LAYER = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]


@pytest.mark.parametrize("value", ["meta", "tpu", "cpu:0", "cuda:x", "\x1b[31m", "mps:0"])
@pytest.mark.parametrize("command", ["layer", "model"])
def test_a_device_that_cannot_compute_is_exit_2(cli, user_home, tmp_path, command, value):
    args = FAST_LAYER if command == "layer" else ["model", *ARCH]
    before = snapshot(user_home)
    exits_2(cli(*args, "--device", value), tmp_path, "unknown device")
    assert snapshot(user_home) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:7"])
def test_a_cuda_device_that_is_not_here_is_exit_2(cli, tmp_path, value):
    exits_2(cli(*FAST_LAYER, "--device", value), tmp_path, "no CUDA device")


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("1,1000000000", "time axis (last) must be at most 16777216"),
        ("8192,16384", "at most 67108864 values"),
        ("1,1,1,1,16", "at most 4 dimensions"),
        ("1," + "9" * 5000, "expected integers"),
    ],
)
def test_an_input_shape_out_of_bounds_is_refused_at_once(cli, tmp_path, shape, words):
    start = time.monotonic()
    result = cli("model", *ARCH, "--input-shape", shape)
    assert time.monotonic() - start < 5  # 150 s at 7.4 GB before
    exits_2(result, tmp_path, "--input-shape", words)


def test_an_input_shape_that_would_not_fit_in_memory_is_refused_before_any_pass(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setattr(upsampcheck.bounds, "available_memory", lambda: GIB)

    def never(*args, **kwargs):
        raise AssertionError("the model ran")

    monkeypatch.setattr(upsampcheck.model.check, "check_model", never)
    result = cli("model", *ARCH, "--input-shape", "4096,16384")
    exits_2(result, tmp_path, "would need about 2.5 GiB", "shorten --input-shape")
