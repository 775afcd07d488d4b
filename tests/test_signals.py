"""Signals: SIGINT and SIGTERM end a run with a one-line message and their exit codes, SIGKILL
leaves no process behind, and no signal leaves a staging folder or touches an earlier report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

SLOW = ["layer", "--stride", "4", "--channels", "32", "--probe-samples", "400000"]
"""About ten seconds of analysis on two cores, with the figure process running."""
FAST = ["layer", "--type", "transposed", "--length", "5", "--stride", "4", "--no-plots"]


def upsampcheck(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "upsampcheck", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def descendants(pid: int) -> list[int]:
    found = children(pid)
    for kid in list(found):
        found += descendants(kid)
    return found


def wait_for_workers(proc: subprocess.Popen, seconds: float = 20.0) -> list[int]:
    """The PIDs of the two figure workers (a child and its child), once the run has both."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kids = descendants(proc.pid)
        if len(kids) >= 2:
            return kids
        time.sleep(0.05)
    raise AssertionError("the run did not start its two figure workers")


@pytest.fixture
def earlier(tmp_path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "r"
    proc = upsampcheck(*FAST, "--out", str(out))
    proc.communicate(timeout=120)
    assert proc.returncode == 1
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.parametrize(
    ("sig", "code", "words"),
    [(signal.SIGINT, 130, "interrupted (SIGINT)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_sigint_and_sigterm_exit_with_their_code_and_leave_nothing(earlier, sig, code, words):
    out, before = earlier
    proc = upsampcheck(*SLOW, "--out", str(out))
    workers = wait_for_workers(proc)
    time.sleep(0.5)  # into the analysis
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stderr.decode().strip() == f"upsampcheck: {words}"
    time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]  # no staging, no lock
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_sigkill_leaves_no_process_and_frees_the_callers_stdout(earlier):
    out, before = earlier
    proc = upsampcheck(*SLOW, "--out", str(out))
    workers = wait_for_workers(proc)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    start = time.monotonic()
    proc.stdout.read()  # returns only when no process holds the pipe open
    assert time.monotonic() - start < 10
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)  # the second dies with the first
    stray = [p.name for p in out.parent.iterdir() if p.name != "r"]
    assert all(name.endswith(".upsampcheck-lock") for name in stray)  # a lock, never staging
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    again = upsampcheck(*FAST, "--out", str(out))
    again.communicate(timeout=120)
    assert again.returncode == 1  # the dead run's lock does not hold
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]


def test_a_second_run_while_the_first_writes_is_refused_with_exit_2(tmp_path):
    out = tmp_path / "r"
    first = upsampcheck(*SLOW, "--out", str(out))
    lock = tmp_path / ".r.upsampcheck-lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.exists(), "the first run took no lock"
    second = upsampcheck(*FAST, "--out", str(out))
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2 and b"another upsampcheck run" in err
    first.communicate(timeout=300)
    assert first.returncode == 1 and (out / "report.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_signal_wrapped_by_python_while_a_class_is_made_is_still_that_signal(monkeypatch, capsys):
    """SIGTERM landing inside ``__set_name__`` (pydantic builds classes on import) reaches the
    tool as ``RuntimeError: Error calling __set_name__`` with the signal as its cause: exit
    143 and one line, not an internal error."""
    import importlib

    from upsampcheck import signals
    from upsampcheck.cli.main import main

    app_module = importlib.import_module("upsampcheck.cli.app")  # the module, not the Typer

    def wrapped(*args, **kwargs):
        try:
            raise signals.Signalled(15)
        except signals.Signalled as exc:
            raise RuntimeError("Error calling __set_name__ on 'cached_property'") from exc

    monkeypatch.setattr(app_module, "app", wrapped)
    assert main(["layer"]) == 143
    assert capsys.readouterr().err == "upsampcheck: terminated (SIGTERM)\n"
