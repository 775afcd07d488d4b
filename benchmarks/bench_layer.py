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
import sys
import tempfile

from common import machine, round_robin, summary, tool_command, write_json

OWN_WORK_TARGET_S = 1.0  # end to end minus importing torch, on 2 CPU cores
HELP_TARGET_S = 0.3
LAYER_ARGS = ["layer", "--type", "transposed", "--length", "5", "--stride", "4"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    tool = tool_command()
    info = machine(tool, args.repeat, args.warmup)
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
        runs = round_robin(benches, args.repeat, args.warmup, tmp)

    stats = {name: summary([r["wall_s"] for r in rs]) for name, rs in runs.items()}
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
    if info["cpu_count"] != 2:
        cores = info["cpu_count"]
        print(f"note: the own-work target is stated for 2 CPU cores; this machine has {cores}")

    write_json(
        args.json,
        {
            **info,
            "commands": stats,
            "derived": derived,
            "targets": {label: {"value": v, "target": t, "pass": v < t} for label, v, t in checks},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
