"""A hostile environment never changes a verdict into another code and never prints a
traceback: closed or broken standard streams, a full device, tight resource limits, signals
in the first instant. Every case is a real process (its exit status and stderr read from
the outside) with the user's files in a fake HOME compared byte for byte."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import snapshot

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shells and limits")

FAST = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]
"""A failing layer: its verdict is exit 1."""
PASSING = ["layer", "--type", "nearest", "--stride", "2", "--length", "0", "--no-plots"]


def sh(script: str, tmp_path: Path, home: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with ``$UPS`` the tool (``python -m upsampcheck``)."""
    env = {**os.environ, "HOME": str(home), "UPS": f"{shlex.quote(sys.executable)} -m upsampcheck"}
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def args(*extra: str) -> str:
    return " ".join(shlex.quote(a) for a in extra)


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


@pytest.mark.parametrize(
    ("redirect", "layer", "code"),
    [
        (">&-", FAST, 1),  # stdout closed
        (">&-", PASSING, 0),
        ("> /dev/full", FAST, 1),  # a full device
        ("> /dev/full", PASSING, 0),
        ("2>&-", FAST, 1),  # stderr closed
        (">&- 2>&-", PASSING, 0),
    ],
)
def test_a_closed_or_full_stream_keeps_the_verdicts_exit_code(
    tmp_path, user_home, redirect, layer, code
):
    before = snapshot(user_home)
    proc = sh(f"$UPS {args(*layer, '--out', 'r')} {redirect}", tmp_path, user_home)
    assert proc.returncode == code, proc.stderr
    no_traceback(proc.stderr)
    if "/dev/full" in redirect:
        assert proc.stderr.strip().endswith("could not write to stdout: No space left on device")
    assert (tmp_path / "r" / "report.json").is_file()
    assert snapshot(user_home) == before


@pytest.mark.parametrize("fmt", ["text", "json", "junit"])
def test_a_reader_that_exits_early_ends_the_output_quietly_with_the_verdicts_code(
    tmp_path, user_home, fmt
):
    script = f"$UPS {args(*FAST, '--out', 'r', '--format', fmt)} | head -c 1 >/dev/null; "
    script += "exit ${PIPESTATUS[0]}"
    proc = sh(script, tmp_path, user_home)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr


def test_a_reader_that_has_already_exited_changes_nothing(tmp_path, user_home):
    proc = subprocess.Popen(
        [sys.executable, "-m", "upsampcheck", *FAST, "--out", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HOME": str(user_home)},
    )
    proc.stdout.close()  # nobody reads: every write is a broken pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and err == "", err


def test_stderr_closed_on_bad_usage_still_exits_2(tmp_path, user_home):
    proc = sh(f"$UPS {args('layer', '--stride', 'x', '--out', 'r')} 2>&-", tmp_path, user_home)
    assert proc.returncode == 2 and not (tmp_path / "r").exists()


def test_too_few_file_descriptors_is_exit_2_in_one_line(tmp_path, user_home):
    before = snapshot(tmp_path)
    proc = sh(f"ulimit -n 10; $UPS {args(*FAST[:-1], '--out', 'r')}", tmp_path, user_home)
    assert proc.returncode in (1, 2), proc.stderr  # 1 where 10 descriptors were enough
    no_traceback(proc.stderr)
    if proc.returncode == 2:
        assert proc.stderr.count("\n") == 1 and "too many open files" in proc.stderr
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kib", [1_500_000, 3_000_000])
def test_a_tight_address_space_is_exit_2_in_one_line(tmp_path, user_home, kib):
    before = snapshot(tmp_path)
    proc = sh(f"ulimit -v {kib}; $UPS {args(*FAST, '--out', 'r')}", tmp_path, user_home)
    no_traceback(proc.stderr)
    assert proc.returncode in (1, 2), proc.stderr
    if proc.returncode == 2:
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("upsampcheck: error:")
        assert snapshot(tmp_path) == before


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_first_instant_is_one_line_and_its_code(tmp_path, user_home, delay, sig):
    proc = subprocess.Popen(
        [sys.executable, "-m", "upsampcheck", *FAST, "--out", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HOME": str(user_home)},
    )
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    err = err.decode()
    if proc.returncode in (0, 1):  # it finished first
        return
    assert proc.returncode in (128 + sig, -sig), err
    no_traceback(err)
    assert err.count("\n") <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # no staging, lock or probe


def test_sigint_while_writing_leaves_nothing_beside_out(tmp_path, user_home):
    """Signals sent all through a run with figures: whatever it was doing, only ``r`` (or
    nothing) is left beside ``--out``, never a staging, probe or old folder, and no process
    it started (the figure workers) outlives it."""
    from test_signals import alive, descendants

    linux = sys.platform.startswith("linux")
    for delay in (0.8, 1.4, 2.0, 2.6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "upsampcheck", *FAST[:-1], "--out", str(tmp_path / "r")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "HOME": str(user_home)},
        )
        time.sleep(delay)
        kids = descendants(proc.pid) if linux else []
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        no_traceback(err.decode())
        assert proc.returncode in (1, 130)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in kids), kids
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left in (["home"], ["home", "r"]), left
