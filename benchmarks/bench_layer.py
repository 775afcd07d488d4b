#!/usr/bin/env python3
"""Wall-clock benchmark of `upsampcheck layer` against the cost of importing torch.

Runs every command --repeat times, round-robin (one of each per round) so that machine noise
is spread over all of them, after --warmup untimed rounds. Prints medians (min/max), then the
derived figures against their targets:

    own work = median(end to end) - median(python -c "import torch")   target < 1.0 s (2 cores)
    --help medians                                                     target < 0.3 s

PASS/MISS is informational: the script always exits 0. Stdlib only; never imports torch itself.

    python benchmarks/bench_layer.py [--repeat 7] [--warmup 1] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

OWN_WORK_TARGET_S = 1.0  # end to end minus importing torch, on 2 CPU cores
HELP_TARGET_S = 0.3
LAYER_ARGS = ["layer", "--type", "transposed", "--length", "5", "--stride", "4"]


def tool_command() -> list[str]:
    """The `upsampcheck` console script, or `python -m upsampcheck` when it is not on PATH."""
    exe = shutil.which("upsampcheck")
    return [exe] if exe else [sys.executable, "-m", "upsampcheck"]


def run_once(cmd: list[str], ok_codes: tuple[int, ...]) -> float:
    """Seconds to run cmd to completion; raises if its exit code is not in ok_codes."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise SystemExit(
            f"error: {' '.join(cmd)} exited {proc.returncode} (expected {ok_codes})\n"
            f"{proc.stderr[-2000:]}"
        )
    return elapsed


def torch_version() -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else "unavailable"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    tool = tool_command()
    cores = os.cpu_count()
    torch_ver = torch_version()
    print(f"machine : {platform.machine()}, os.cpu_count() = {cores}")
    print(f"python  : {platform.python_version()} ({sys.executable})")
    print(f"torch   : {torch_ver}")
    print(f"tool    : {' '.join(tool)}")
    print(f"runs    : {args.repeat} timed per command, round-robin, after {args.warmup} warm-up")
    print()

    with tempfile.TemporaryDirectory(prefix="upsampcheck-bench-") as tmp:
        # name -> (argv without --out, accepted exit codes, takes a fresh --out folder)
        benches = {
            "import torch": ([sys.executable, "-c", "import torch"], (0,), False),
            "layer (end to end)": (tool + LAYER_ARGS, (0, 1), True),
            "layer --no-plots": (tool + LAYER_ARGS + ["--no-plots"], (0, 1), True),
            "--help": (tool + ["--help"], (0,), False),
            "layer --help": (tool + ["layer", "--help"], (0,), False),
        }
        times: dict[str, list[float]] = {name: [] for name in benches}
        for rnd in range(args.warmup + args.repeat):
            for i, (name, (cmd, ok, wants_out)) in enumerate(benches.items()):
                out = ["--out", os.path.join(tmp, f"r{rnd}-{i}")] if wants_out else []
                elapsed = run_once(cmd + out, ok)
                if rnd >= args.warmup:
                    times[name].append(elapsed)
        last_report = os.path.join(tmp, f"r{args.warmup + args.repeat - 1}-1")
        if not any(f.endswith(".png") for f in os.listdir(last_report)):
            print("warning: the end-to-end run wrote no PNG figures", file=sys.stderr)

    stats = {
        name: {"median": statistics.median(t), "min": min(t), "max": max(t), "runs": t}
        for name, t in times.items()
    }
    print(f"{'command':<22}{'median s':>10}{'min s':>10}{'max s':>10}")
    for name, s in stats.items():
        print(f"{name:<22}{s['median']:>10.3f}{s['min']:>10.3f}{s['max']:>10.3f}")
    print()

    base = stats["import torch"]["median"]
    e2e = stats["layer (end to end)"]["median"]
    no_plots = stats["layer --no-plots"]["median"]
    derived = {
        "own_work_s": e2e - base,
        "own_work_no_plots_s": no_plots - base,
        "ratio_end_to_end_over_import_torch": e2e / base,
        "help_s": stats["--help"]["median"],
        "layer_help_s": stats["layer --help"]["median"],
    }
    checks = [
        ("own work (end to end - import torch)", derived["own_work_s"], OWN_WORK_TARGET_S),
        ("--help", derived["help_s"], HELP_TARGET_S),
        ("layer --help", derived["layer_help_s"], HELP_TARGET_S),
    ]
    for label, value, target in checks:
        verdict = "PASS" if value < target else "MISS"
        print(f"{label:<40}{value:>8.3f} s   target < {target:.1f} s   {verdict}")
    print(f"{'own work, --no-plots':<40}{derived['own_work_no_plots_s']:>8.3f} s   (info)")
    ratio = derived["ratio_end_to_end_over_import_torch"]
    print(f"{'ratio end to end / import torch':<40}{ratio:>8.2f} x")
    if cores != 2:
        print(f"note: the own-work target is stated for 2 CPU cores; this machine has {cores}")

    if args.json:
        figures = {
            "cpu_count": cores,
            "python": platform.python_version(),
            "torch": torch_ver,
            "tool": tool,
            "repeat": args.repeat,
            "warmup": args.warmup,
            "commands": stats,
            "derived": derived,
            "targets": {label: {"value": v, "target": t, "pass": v < t} for label, v, t in checks},
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
