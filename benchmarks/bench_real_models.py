#!/usr/bin/env python3
"""`upsampcheck model` on real architectures against a bare forward pass of the same batch.

For each model of :mod:`real_models` (BigVGAN base 22 kHz, the DAC 44.1 kHz decoder, the EnCodec
24 kHz decoder, speechbrain HiFi-GAN (8, 8, 2, 2), the 700 M-parameter Demucs), at random init:

- the tool: ``upsampcheck model --arch real_models:<builder> --sample-rate <fs>`` end to end
  (report folder, figures and all), its probe shape read from a first, untimed run's
  report.json;
- the bare script: imports torch, builds the same model with the same builder, and runs ONE
  forward pass of a ``(5, *shape)`` batch (the tool's five probes) under
  ``torch.inference_mode``.

Commands run round-robin, one of each per round; peak memory is ``ru_maxrss`` of each child
process tree (the largest process). Prints medians and the ratios tool / bare, target <= 1.5
for both. A model whose package is absent is skipped with a line saying so.

    pip install -e '.[bench]'
    python benchmarks/bench_real_models.py [--repeat 3] [--models bigvgan,dac] [--json out.json]

Exit status 0 always (figures, not a test). Stdlib only in this process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import textwrap

from common import machine, round_robin, run_once, summary, tool_command, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = 1.5
MODELS = {
    # name: (builder in real_models, package to import, output sample rate)
    "bigvgan": ("bigvgan_base_22k", "bigvgan", 22050),
    "dac": ("dac_44k_decoder", "dac", 44100),
    "encodec": ("encodec_24k_decoder", "encodec", 24000),
    "speechbrain": ("speechbrain_hifigan", "speechbrain", 22050),
    "demucs": ("demucs_700m", "demucs", 44100),
}
BARE = textwrap.dedent(
    """
    import sys, time, torch
    sys.path.insert(0, {here!r})
    import real_models
    torch.manual_seed(0)
    model = getattr(real_models, sys.argv[1])().eval()
    shape = tuple(int(d) for d in sys.argv[2].split(","))
    batch = torch.randn(5, *shape) * 0.1
    start = time.perf_counter()
    with torch.inference_mode():
        model(batch)
    print(time.perf_counter() - start)
    """
)


def probe_shape(tool: list[str], builder: str, fs: int, tmp: str) -> tuple[str, str]:
    """The input shape (``"80,256"``) the tool probes with and its exit code, from one run."""
    out = os.path.join(tmp, f"shape-{builder}")
    cmd = [*tool, "model", "--arch", f"real_models:{builder}", "--sample-rate", str(fs)]
    run_once([*cmd, "--out", out, "--no-plots"], (0, 1), tmp)
    with open(os.path.join(out, "report.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    return ",".join(map(str, report["subject"]["input_shape"])), str(len(report["stages"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=0, help="untimed rounds first")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))
    import common  # ENV was read at import: refresh it with this PYTHONPATH

    common.ENV["PYTHONPATH"] = os.pathsep.join([common.REPO, os.environ["PYTHONPATH"]])
    tool = tool_command()
    info = machine(tool, args.repeat, args.warmup)
    print()
    figures, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="upsampcheck-real-") as tmp:
        bare_py = os.path.join(tmp, "bare_forward.py")
        with open(bare_py, "w", encoding="utf-8") as fh:
            fh.write(BARE.format(here=HERE))
        for name in args.models.split(","):
            builder, package, fs = MODELS[name]
            if importlib.util.find_spec(package) is None:
                hint = "pip install -e '.[bench]'"
                print(f"{name}: skipped, package {package!r} is not installed ({hint})")
                continue
            shape, stages = probe_shape(tool, builder, fs, tmp)
            print(f"{name}: {stages} stages, probe batch (5, {shape})", flush=True)
            arch = ["model", "--arch", f"real_models:{builder}", "--sample-rate", str(fs)]
            benches = {
                "bare": ([sys.executable, bare_py, builder, shape], (0,), False),
                "tool": ([*tool, *arch], (0, 1), True),
                "tool --no-plots": ([*tool, *arch, "--no-plots"], (0, 1), True),
            }
            runs = round_robin(benches, args.repeat, args.warmup, tmp)
            keys = ("wall_s", "cpu_s", "peak_rss_mib")
            stats = {
                k: {key: summary([r[key] for r in rs]) for key in keys} for k, rs in runs.items()
            }
            wall = stats["tool"]["wall_s"]["median"] / stats["bare"]["wall_s"]["median"]
            memory = (
                stats["tool"]["peak_rss_mib"]["median"] / stats["bare"]["peak_rss_mib"]["median"]
            )
            plain = stats["tool --no-plots"]["wall_s"]["median"] / stats["bare"]["wall_s"]["median"]
            forward = [float(r["stdout"].strip().splitlines()[-1]) for r in runs["bare"]]
            figures[name] = {
                "shape": shape,
                "stages": stages,
                "commands": stats,
                "wall_ratio": wall,
                "wall_ratio_no_plots": plain,
                "memory_ratio": memory,
                "bare_forward_s": summary(forward),
            }
            rows.append((name, stages, shape, stats, wall, memory, plain))
    print()
    print(
        f"{'model':<12}{'stages':>7}  {'batch':<14}{'tool s':>8}{'bare s':>8}{'wall x':>8}"
        f"{'tool MiB':>10}{'bare MiB':>10}{'mem x':>7}{'no-plots s':>11}{'x':>6}"
    )
    for name, stages, shape, stats, wall, memory, plain in rows:
        t, b = stats["tool"], stats["bare"]
        verdict = "PASS" if max(wall, memory) <= TARGET else "MISS"
        print(
            f"{name:<12}{stages:>7}  {'5,' + shape:<14}{t['wall_s']['median']:>8.1f}"
            f"{b['wall_s']['median']:>8.1f}{wall:>8.2f}{t['peak_rss_mib']['median']:>10.0f}"
            f"{b['peak_rss_mib']['median']:>10.0f}{memory:>7.2f}"
            f"{stats['tool --no-plots']['wall_s']['median']:>11.1f}{plain:>6.2f}  {verdict}"
        )
    print(
        f"target: wall and peak-memory ratio <= {TARGET} for every model (medians of "
        f"{args.repeat} run(s)); PASS/MISS is for the default run, figures and all"
    )
    write_json(args.json, {**info, "models": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
