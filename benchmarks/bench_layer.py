#!/usr/bin/env python3
"""Wall-clock benchmark of `upsampcheck layer` against the cost of importing torch.

Runs every command --repeat times, round-robin (one of each per round) so that machine noise
is spread over all of them, after --warmup untimed rounds. Prints medians (min/max), then the
derived figures against their targets:

    own work = median(end to end) - median(python -c "import torch")   target < 0.5 s (2 cores)
    --help medians                                                     target < 0.3 s

With ``--loads 0,2`` every command is timed once per load: quiet, then while two CPU-bound
processes compete for the cores (the own-work target then allows 0.3 s more).

PASS/MISS is informational: the script always exits 0. Stdlib only; never imports torch itself.

    python benchmarks/bench_layer.py [--repeat 7] [--warmup 1] [--loads 0,2] [--json figures.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from common import busy, load_average, machine, round_robin, summary, tool_command, write_json

OWN_WORK_TARGET_S = 0.5  # end to end minus importing torch, on 2 CPU cores
LOAD_SLACK_S = 0.3  # more, while competing processes run
HELP_TARGET_S = 0.3
LAYER_ARGS = ["layer", "--type", "transposed", "--length", "5", "--stride", "4"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--loads", default="0", help="competing CPU-bound processes, e.g. 0,2")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    tool = tool_command()
    info = machine(tool, args.repeat, args.warmup)
    figures = {}
    for load in (int(n) for n in args.loads.split(",")):
        print(f"\nload {load}: {load} competing process(es); load average {load_average():.2f}")
        with busy(load):
            figures[str(load)] = timed(tool, args, load)
    write_json(args.json, {**info, "loads": figures})
    return 0


def timed(tool: list[str], args: argparse.Namespace, load: int) -> dict:
    """Every command round-robin, its medians and the derived figures against the targets."""
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
    own_target = OWN_WORK_TARGET_S + (LOAD_SLACK_S if load else 0.0)
    checks = [
        ("own work (end to end - import torch)", derived["own_work_s"], own_target),
        ("--help", derived["help_s"], HELP_TARGET_S),
        ("layer --help", derived["layer_help_s"], HELP_TARGET_S),
    ]
    for label, value, target in checks:
        verdict = "PASS" if value < target else "MISS"
        print(f"{label:<40}{value:>8.3f} s   target < {target:.1f} s   {verdict}")
    print(f"{'own work, --no-plots':<40}{derived['own_work_no_plots_s']:>8.3f} s   (info)")
    ratio = derived["ratio_end_to_end_over_import_torch"]
    print(f"{'ratio end to end / import torch':<40}{ratio:>8.2f} x")
    return {
        "commands": stats,
        "derived": derived,
        "targets": {label: {"value": v, "target": t, "pass": v < t} for label, v, t in checks},
    }


if __name__ == "__main__":
    sys.exit(main())
