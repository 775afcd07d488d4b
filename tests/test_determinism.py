"""Same command, same seed: byte-identical report.json. Layers and stacks run in float64, so
no thread count changes a byte; a float32 model's own forward pass rounds differently when its
convolutions are split over another number of threads, so its reports agree across thread
counts to that round-off (and byte for byte at one thread count)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

COMMANDS = {
    "layer": ["layer", "--type", "subpixel", "--stride", "3", "--channels", "2"],
    "stack": ["layer", "--config", "fig8_transposed"],
    "model": ["model", "--arch", "model_fixtures:TransposedStack", "--input-shape", "4,2000"],
}


def report_bytes(args: list[str], out, threads: int) -> bytes:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    tests = os.path.dirname(__file__)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tests, env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "upsampcheck", *args, "--no-plots", "--out", str(out)],
        capture_output=True,
        env=env,
    )
    assert proc.returncode in (0, 1), proc.stderr.decode()
    return (out / "report.json").read_bytes()


def numbers(doc, path=""):
    """Every number of a JSON document by its path."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from numbers(value, f"{path}/{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from numbers(value, f"{path}[{i}]")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield path, doc


@pytest.mark.parametrize("name", ["layer", "stack"])
def test_layer_and_stack_reports_are_byte_identical_across_runs_and_thread_counts(tmp_path, name):
    args = [*COMMANDS[name], "--seed", "7"]
    one = report_bytes(args, tmp_path / "a", threads=1)
    assert report_bytes(args, tmp_path / "b", threads=2) == one
    assert report_bytes(args, tmp_path / "c", threads=2) == one
    assert b'"seed": 7' in one


def test_a_model_report_is_byte_identical_per_thread_count_and_agrees_across_them(tmp_path):
    args = [*COMMANDS["model"], "--seed", "7"]
    two = report_bytes(args, tmp_path / "a", threads=2)
    assert report_bytes(args, tmp_path / "b", threads=2) == two
    one = json.loads(report_bytes(args, tmp_path / "c", threads=1))
    other = dict(numbers(json.loads(two)))
    for path, value in numbers(one):
        assert abs(value - other[path]) <= 0.011, path  # one unit of the last digit at most
