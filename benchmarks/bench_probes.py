#!/usr/bin/env python3
"""Before/after cost of the probes: `layer` and `model` (conv_tasnet_base) on two checkouts.

Runs, round-robin in one run (so machine noise falls on both alike), the same commands with
PYTHONPATH set to a *before* tree (e.g. `git archive 57aa50f | tar -x -C /tmp/before`, the last
commit with Gaussian noise and Welch averaging) and to this checkout (the periodic multitone).
Prints median wall time, CPU time and peak RSS per command and the after/before ratios; the
acceptance line is that the ratios stay at or below 1 (within noise). Stdlib only; always exits 0.

    python benchmarks/bench_probes.py --before /tmp/before [--repeat 3] [--json figures.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

from common import REPO, machine, run_once, tool_command, write_json

LAYER = ["layer", "--type", "transposed", "--length", "5", "--stride", "4"]
MODEL = ["model", "--arch", "torchaudio.models:conv_tasnet_base", "--sample-rate", "8000"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the checkout to compare against")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--samples", type=int, default=32768, help="model input length")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()

    tool = tool_command()
    info = machine(tool, args.repeat, args.warmup)
    print(f"before  : {os.path.abspath(args.before)}\n")
    shape = ["--input-shape", f"1,{args.samples}", "--no-plots"]
    trees = {"before": os.path.abspath(args.before), "after": REPO}
    commands = {"layer": LAYER + ["--no-plots"], "model": MODEL + shape}
    runs: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="upsampcheck-bench-") as tmp:
        for rnd in range(args.warmup + args.repeat):
            for what, argv in commands.items():
                for tree, path in trees.items():
                    out = ["--out", os.path.join(tmp, f"{what}-{tree}-{rnd}")]
                    cmd = ["env", f"PYTHONPATH={path}", *tool, *argv, *out]
                    result = run_once(cmd, (0, 1), tmp)
                    if rnd >= args.warmup:
                        runs.setdefault((what, tree), []).append(result)

    figures: dict[str, dict] = {}
    print(f"{'command':<16}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}")
    for (what, tree), rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "peak_rss_mib")}
        figures[f"{what} {tree}"] = med
        print(f"{what + ' ' + tree:<16}{med['wall_s']:>9.2f}{med['cpu_s']:>9.2f}"
              f"{med['peak_rss_mib']:>10.0f}")  # fmt: skip
    print()
    ratios = {}
    for what in commands:
        before, after = figures[f"{what} before"], figures[f"{what} after"]
        ratios[what] = {k: after[k] / before[k] for k in before}
        r = ratios[what]
        print(f"{what:<8} after/before: wall {r['wall_s']:.2f}  cpu {r['cpu_s']:.2f}  "
              f"peak RSS {r['peak_rss_mib']:.2f}")  # fmt: skip
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"note: 1-min load average {os.getloadavg()[0]:.1f}: wall times are noisy")
    write_json(args.json, {**info, "medians": figures, "ratios": ratios})
    return 0


if __name__ == "__main__":
    sys.exit(main())
