"""Same command, same seed: byte-identical report.json, whatever the thread count."""

from __future__ import annotations

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


@pytest.mark.parametrize("name", COMMANDS)
def test_report_json_is_byte_identical_across_runs_and_thread_counts(tmp_path, name):
    args = [*COMMANDS[name], "--seed", "7"]
    one = report_bytes(args, tmp_path / "a", threads=1)
    assert report_bytes(args, tmp_path / "b", threads=2) == one
    assert report_bytes(args, tmp_path / "c", threads=2) == one
    assert b'"seed": 7' in one
