"""What both benchmarks share: finding the tool, timing child processes round-robin, the
machine header and the JSON figures. Stdlib only; nothing here imports torch."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Children import upsampcheck from the checkout that holds this file, whatever an editable
# install points at: PYTHONPATH comes before site-packages.
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
}
Bench = tuple[list[str], tuple[int, ...], bool]
"""argv without --out, accepted exit codes, whether it takes a fresh --out folder."""


def tool_command() -> list[str]:
    """The `upsampcheck` console script next to this Python (not a pyenv shim, whose start-up
    would be counted), else the one on PATH, else `python -m upsampcheck`."""
    here = os.path.join(os.path.dirname(sys.executable), "upsampcheck")
    if os.access(here, os.X_OK):
        return [here]
    exe = shutil.which("upsampcheck")
    return [exe] if exe else [sys.executable, "-m", "upsampcheck"]


def run_once(cmd: list[str], ok_codes: tuple[int, ...], scratch: str) -> dict[str, Any]:
    """Wall seconds, CPU seconds (user + sys), peak RSS (MiB) and stdout of one run of cmd;
    raises if its exit code is not in ok_codes. Peak RSS is `ru_maxrss` from `os.wait4`: the
    largest single process among the child and the descendants it waited for (not a sum)."""
    out_path, err_path = os.path.join(scratch, "stdout"), os.path.join(scratch, "stderr")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    with open(out_path, encoding="utf-8", errors="replace") as fh:
        stdout = fh.read()
    if code not in ok_codes:
        with open(err_path, encoding="utf-8", errors="replace") as fh:
            stderr = fh.read()
        raise SystemExit(
            f"error: {' '.join(cmd)} exited {code} (expected {ok_codes})\n{stderr[-2000:]}"
        )
    return {
        "wall_s": elapsed,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "stdout": stdout,
    }


def round_robin(
    benches: dict[str, Bench], repeat: int, warmup: int, tmp: str
) -> dict[str, list[dict[str, Any]]]:
    """Run every bench once per round (so machine noise spreads over all of them), `warmup`
    untimed rounds first; warns when the last end-to-end run (the second bench) wrote no PNG.
    Each result also holds ``out``, its --out folder (None for a bench that takes none)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in benches}
    for rnd in range(warmup + repeat):
        for i, (name, (cmd, ok, wants_out)) in enumerate(benches.items()):
            out = ["--out", os.path.join(tmp, f"r{rnd}-{i}")] if wants_out else []
            result = run_once(cmd + out, ok, tmp)
            result["out"] = out[1] if out else None
            if rnd >= warmup:
                runs[name].append(result)
    last_report = os.path.join(tmp, f"r{warmup + repeat - 1}-1")
    if not any(f.endswith(".png") for f in os.listdir(last_report)):
        print("warning: the end-to-end run wrote no PNG figures", file=sys.stderr)
    return runs


BURN = "import os, sys\nwhile os.getppid() == int(sys.argv[1]):\n    sum(range(10**6))\n"
"""A CPU-bound competitor (argv: its parent's pid); it ends by itself within ~30 ms once that
parent is gone."""


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def busy(n: int) -> Iterator[list[int]]:
    """Keep `n` CPU-bound processes (:data:`BURN`) running for the length of the block; yields
    their pids. Each is the leader of its own process group, and every group gets SIGKILL on
    the way out, whatever the way (an exception, Ctrl-C, or SIGTERM, turned into SystemExit
    while the block runs); were this process killed outright, they end by themselves."""
    procs: list[subprocess.Popen] = []
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        for _ in range(n):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", BURN, str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in procs:
            proc.wait()
        signal.signal(signal.SIGTERM, previous)


def load_average() -> float:
    """The 1-minute load average (NaN where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return float("nan")


def summary(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the runs themselves."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def versions(modules: str = "torch") -> tuple[str, str]:
    """(the versions of `modules`, comma-separated, and where children import upsampcheck from),
    read in a child so that this process never imports torch."""
    names = [m.strip() for m in modules.split(",")]
    code = (
        f"import os, upsampcheck, {modules}; "
        f"print(' '.join(m.__version__ for m in ({', '.join(names)},))); "
        "print(os.path.dirname(upsampcheck.__file__))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    lines = proc.stdout.split("\n")
    return (lines[0], lines[1]) if proc.returncode == 0 else ("unavailable", "unavailable")


def machine(tool: list[str], repeat: int, warmup: int, modules: str = "torch") -> dict[str, Any]:
    """Print the header every benchmark starts with; return it for the JSON figures."""
    info = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tool": tool,
        "repeat": repeat,
        "warmup": warmup,
    }
    info["torch"], info["package"] = versions(modules)
    print(f"machine : {platform.machine()}, os.cpu_count() = {info['cpu_count']}")
    print(f"python  : {info['python']} ({sys.executable})")
    print(f"torch   : {info['torch']}  ({modules})")
    print(f"tool    : {' '.join(tool)}")
    print(f"package : {info['package']}  (PYTHONPATH={REPO} for every child)")
    print(f"runs    : {repeat} timed per command, round-robin, after {warmup} warm-up")
    return info


def write_json(path: str | None, figures: dict[str, Any]) -> None:
    """Write the figures when --json was given."""
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
        print(f"figures written to {path}")
