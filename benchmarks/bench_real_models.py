#!/usr/bin/env python3
"""`upsampcheck model` on real architectures against a bare forward pass of the same batch.

For each model of :mod:`real_models` (BigVGAN base 22 kHz, the DAC 44.1 kHz decoder, the EnCodec
24 kHz decoder, speechbrain HiFi-GAN (8, 8, 2, 2), the 700 M-parameter Demucs), at random init,
at each input shape of ``--shapes`` and each competing load of ``--loads``:

- the tool: ``upsampcheck model --arch real_models:<builder> --sample-rate <fs> -v`` end to end
  (report folder, figures and all); ``-v`` puts its per-phase ``timings`` in report.json;
- the bare script: imports torch, builds the same model with the same builder, and runs ONE
  forward pass of a ``(5, *shape)`` batch (the tool's five probes) under
  ``torch.inference_mode``, printing that forward's seconds.

Shapes, found by untimed ``--no-plots`` runs before any timing: ``default`` is the one the tool
picks with no ``--input-shape`` (``subject.input_shape`` of its report.json); ``short`` asks for
an output of about 32,768 samples, ``--input-shape C,max(1, round(T * 32768 / N))`` from the
default (C, T) and its output length N (the last integer of the note "analysed ... of shape
(...) per probe"), with ``--short-probe`` (keep that length below the full-resolution probe),
and keeps the shape the tool then actually probed (it may lengthen it to whole periods of the
shortest multitone). The tool's timed runs at ``short`` pass that shape as ``--input-shape`` with
``--short-probe``; a short shape equal to the default one is said so, marked ``short*`` and
timed all the same.

Per (load, shape), commands run round-robin, one of each per round, while ``load`` CPU-bound
processes compete (started before the first round, killed after the last, whatever happens);
the 1-min load average is printed at the block's start and end. Peak memory is ``ru_maxrss``
of each child process tree (the largest process). Printed: medians, the ratios tool / bare for
wall time and peak RSS with PASS/MISS against the target (<= 1.2 at ``default``, <= 1.5 at
``short``, each 0.3 more under load), and the medians of the tool's phases next to the bare
script's forward and wall seconds. A model whose package is absent is skipped with a line.

    pip install -e '.[bench]'
    python benchmarks/bench_real_models.py [--repeat 3] [--warmup 0] [--models bigvgan,dac]
        [--shapes default,short] [--loads 0,2] [--no-plots-too] [--json out.json]

``--load N`` is ``--loads N`` (default 0); ``--repeats bigvgan=1,demucs=1`` sets a model's
timed runs, ``--loaded-repeat N`` caps them under load; ``--no-plots-too`` adds ``tool
--no-plots`` to each round. Where the short shape is the default one (``short*``: the tool
takes no shorter probe), the default's runs are judged against the short target, not timed
again. Exit status 0 always (figures, not a test). Stdlib only in this process.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import sys
import tempfile
import textwrap
from typing import Any

import common
from common import busy, load_average, round_robin, run_once, summary

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"default": 1.2, "short": 1.5}
LOAD_SLACK = 0.3  # added to a target when competing processes run
SHORT_SAMPLES = 32768
PHASES = dict(  # timings key=its column heading
    p.split("=")
    for p in (
        "start-up=start,import=imprt,load=load,discovery=disc,probe pass=probe,"
        "standalone drives=alone,measurement=meas,figures=figs,page=page,write=write,"
        "other=other,total=total"
    ).split(",")
)
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
NOTE = re.compile(r"^analysed .* of shape \(([\d, ]+)\) per probe$")


def report_of(folder: str) -> dict[str, Any]:
    with open(os.path.join(folder, "report.json"), encoding="utf-8") as fh:
        return json.load(fh)


def probed(cmd: list[str], out: str, tmp: str) -> tuple[str, int | None, int]:
    """One untimed ``--no-plots`` run of cmd: the input shape it probed (``"80,256"``), its
    output length per probe (None without the note) and its stage count."""
    run_once([*cmd, "--out", out, "--no-plots"], (0, 1), tmp)
    report = report_of(out)
    notes = [m.group(1) for n in report.get("notes") or [] if (m := NOTE.match(str(n)))]
    length = int(notes[-1].replace(" ", "").rstrip(",").split(",")[-1]) if notes else None
    return ",".join(map(str, report["subject"]["input_shape"])), length, len(report["stages"])


def find_shapes(cmd: list[str], wanted: list[str], tag: str, tmp: str) -> tuple[dict, int]:
    """{"default"/"short": {input_shape, output_samples, label, asked}} and the stage count."""
    shape, length, stages = probed(cmd, os.path.join(tmp, f"{tag}-default"), tmp)
    shapes = {"default": dict(input_shape=shape, output_samples=length, label="default")}
    print(f"  default: probed ({shape}) -> {length} output samples; {stages} stages")
    if "short" in wanted and length is None:
        print("  short  : skipped, report.json has no 'analysed ... of shape' note")
    elif "short" in wanted:
        *lead, frames = (int(d) for d in shape.split(","))
        asked = ",".join(map(str, [*lead, max(1, round(frames * SHORT_SAMPLES / length))]))
        short = [*cmd, "--input-shape", asked, "--short-probe"]
        got, got_len, _ = probed(short, f"{tmp}/{tag}-short", tmp)
        label = "short*" if got == shape else "short"
        shapes["short"] = dict(input_shape=got, output_samples=got_len, label=label, asked=asked)
        print(f"  short  : asked ({asked}), probed ({got}) -> {got_len} output samples")
        if got == shape:
            print("  short* : the short shape IS the default one: the same measurement, again")
    return {k: v for k, v in shapes.items() if k in wanted}, stages


def phase_medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds of each timings phase over the tool's runs (0 where a run skipped it)."""
    timings = [report_of(r["out"]).get("timings") or {} for r in runs]
    keys = [k for k in PHASES if any(k in t for t in timings)]
    keys += sorted({k for t in timings for k in t} - set(keys))
    return {k: statistics.median(t.get(k, 0.0) for t in timings) for k in keys}


def block(
    name: str, label: str, load: int, benches: dict, repeat: int, args: Any, tmp: str
) -> dict:
    """One (model, shape, load): the round-robin under load, its stats, ratios and phases."""
    scratch = os.path.join(tmp, f"{name}-{label}-{load}")
    os.makedirs(scratch)
    start = load_average()
    print(f"{name} {label}, load {load}: load avg {start:.2f} at start", flush=True)
    with busy(load):
        runs = round_robin(benches, repeat, args.warmup, scratch)
        end = load_average()
    keys = ("wall_s", "cpu_s", "peak_rss_mib")
    stats = {k: {key: summary([r[key] for r in rs]) for key in keys} for k, rs in runs.items()}
    med = {k: (s["wall_s"]["median"], s["peak_rss_mib"]["median"]) for k, s in stats.items()}
    ratio = {k: (m[0] / med["bare"][0], m[1] / med["bare"][1]) for k, m in med.items()}
    target = TARGETS[label.rstrip("*")] + (LOAD_SLACK if load else 0.0)
    figures = {
        "load": load,
        "repeat": repeat,
        "loadavg_start": start,
        "loadavg_end": end,
        "commands": stats,
        "wall_ratio": ratio["tool"][0],
        "memory_ratio": ratio["tool"][1],
        "target": target,
        "verdict": "PASS" if max(ratio["tool"]) <= target else "MISS",
        "bare_forward_s": summary(
            [float(r["stdout"].strip().splitlines()[-1]) for r in runs["bare"]]
        ),
        "tool_phases_s": phase_medians(runs["tool"]),
    }
    extra = ""
    if "tool --no-plots" in ratio:
        figures["wall_ratio_no_plots"] = ratio["tool --no-plots"][0]
        extra = (
            f", --no-plots {med['tool --no-plots'][0]:.1f} s = {ratio['tool --no-plots'][0]:.2f}x"
        )
    print(
        f"  load avg {end:.2f} at end; tool {med['tool'][0]:.1f} s / bare {med['bare'][0]:.1f} s = "
        f"{ratio['tool'][0]:.2f}x, {med['tool'][1]:.0f} / {med['bare'][1]:.0f} MiB = "
        f"{ratio['tool'][1]:.2f}x{extra}",
        flush=True,
    )
    for r in runs["tool"]:
        seen = ",".join(map(str, report_of(r["out"])["subject"]["input_shape"]))
        if seen != benches["bare"][0][-1]:
            print(f"  warning: a timed tool run probed ({seen}), not ({benches['bare'][0][-1]})")
    return figures


def tables(rows: list[tuple[str, str, str, dict]], args: Any) -> None:
    print(
        f"\n{'model':<12}{'shape':<8}{'load':>4}  {'batch':<14}{'tool s':>7}{'bare s':>7}"
        f"{'wall x':>7}{'tool MiB':>9}{'bare MiB':>9}{'mem x':>6}{'target':>7}{'n':>3}"
    )
    for name, label, shape, f in rows:
        t, b = f["commands"]["tool"], f["commands"]["bare"]
        print(
            f"{name:<12}{label:<8}{f['load']:>4}  {'5,' + shape:<14}{t['wall_s']['median']:>7.1f}"
            f"{b['wall_s']['median']:>7.1f}{f['wall_ratio']:>7.2f}"
            f"{t['peak_rss_mib']['median']:>9.0f}{b['peak_rss_mib']['median']:>9.0f}"
            f"{f['memory_ratio']:>6.2f}{f['target']:>7.1f}{f['repeat']:>3}  {f['verdict']}"
        )
    print(
        f"targets: wall and peak-memory ratio <= {TARGETS['default']} at default, <= "
        f"{TARGETS['short']} at short (~{SHORT_SAMPLES} output samples),\n"
        f"+{LOAD_SLACK} under load; medians of the n runs, the tool with figures and all;\n"
        "short*: the shortest shape the tool takes is the default one (the default's runs, judged "
        "against the short target)"
    )
    print("\ntool phases, median s of its timed runs (-v timings), against the bare script")
    print(
        f"{'model/shape':<12}{'busy':>4}"
        + "".join(f"{h:>6}" for h in PHASES.values())
        + f"{'fwd':>6}{'wall':>6}"
    )
    for i, (name, label, _, f) in enumerate(rows):
        if i == 0 or rows[i - 1][0] != name:
            print(name)
        ph, b = f["tool_phases_s"], f["commands"]["bare"]["wall_s"]["median"]
        cells = "".join(f"{ph[k]:>6.1f}" if k in ph else f"{'-':>6}" for k in PHASES)
        print(f"  {label:<10}{f['load']:>4}{cells}{f['bare_forward_s']['median']:>6.1f}{b:>6.1f}")
    print("busy: the load (competing processes); fwd: the bare script's forward pass; wall: its")
    print("whole run (python, torch, the model); tool phases as in upsampcheck/phases.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=0, help="untimed rounds first")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--shapes", default="default,short", help="default, short or both")
    parser.add_argument("--loads", "--load", default="0", help="competing CPU-bound processes")
    parser.add_argument(
        "--repeats",
        default="",
        help="per-model timed runs, e.g. bigvgan=1,demucs=1 (else --repeat)",
    )
    parser.add_argument(
        "--loaded-repeat", type=int, help="timed runs per command under load (else as quiet)"
    )
    parser.add_argument("--no-plots-too", action="store_true", help="time tool --no-plots too")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    wanted, names = args.shapes.split(","), args.models.split(",")
    loads = [int(n) for n in args.loads.split(",")]
    repeats = {k: int(v) for k, v in (p.split("=") for p in args.repeats.split(",") if p)}
    if not set(wanted) <= set(TARGETS) or min(loads) < 0 or set(names) - set(MODELS):
        parser.error(
            f"--shapes: default and/or short; --loads: counts >= 0; --models: {','.join(MODELS)}"
        )
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))
    # common.ENV was read at import: refresh it with this PYTHONPATH
    common.ENV["PYTHONPATH"] = os.pathsep.join([common.REPO, os.environ["PYTHONPATH"]])
    tool = common.tool_command()
    info = common.machine(tool, args.repeat, args.warmup)
    print(f"blocks  : per model, for each load of {args.loads}, each shape of {args.shapes}")
    print(f"load avg: {load_average():.2f} (1 min) before the first run")
    figures: dict[str, Any] = {}
    rows: list[tuple[str, str, str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="upsampcheck-real-") as tmp:
        bare_py = os.path.join(tmp, "bare_forward.py")
        with open(bare_py, "w", encoding="utf-8") as fh:
            fh.write(BARE.format(here=HERE))
        for name in names:
            builder, package, fs = MODELS[name]
            print()
            if importlib.util.find_spec(package) is None:
                hint = "pip install -e '.[bench]'"
                print(f"{name}: skipped, package {package!r} is not installed ({hint})")
                continue
            arch = ["model", "--arch", f"real_models:{builder}", "--sample-rate", str(fs)]
            print(f"{name}: finding the shapes (untimed --no-plots runs)", flush=True)
            shapes, stages = find_shapes([*tool, *arch], wanted, name, tmp)
            figures[name] = {"stages": stages, "shapes": shapes, "loads": {}}
            for load in loads:
                figures[name]["loads"][str(load)] = {}
                repeat = repeats.get(name, args.repeat)
                if load and args.loaded_repeat is not None:
                    repeat = min(repeat, args.loaded_repeat)
                for key, sh in shapes.items():
                    shape, label = sh["input_shape"], sh["label"]
                    if label == "short*" and "default" in figures[name]["loads"][str(load)]:
                        same = dict(figures[name]["loads"][str(load)]["default"])
                        same["target"] = TARGETS["short"] + (LOAD_SLACK if load else 0.0)
                        worst = max(same["wall_ratio"], same["memory_ratio"])
                        same["verdict"] = "PASS" if worst <= same["target"] else "MISS"
                        figures[name]["loads"][str(load)][key] = same
                        rows.append((name, label, shape, same))
                        continue
                    given = ["--input-shape", shape, "--short-probe"] if key == "short" else []
                    cmd = [*tool, *arch, *given, "-v"]
                    benches = {
                        "bare": ([sys.executable, bare_py, builder, shape], (0,), False),
                        "tool": (cmd, (0, 1), True),
                    }
                    if args.no_plots_too:
                        benches["tool --no-plots"] = ([*cmd, "--no-plots"], (0, 1), True)
                    f = block(name, label, load, benches, repeat, args, tmp)
                    figures[name]["loads"][str(load)][key] = f
                    rows.append((name, label, shape, f))
    tables(rows, args)
    info.update(loads=loads, targets=TARGETS, load_slack=LOAD_SLACK, short_samples=SHORT_SAMPLES)
    common.write_json(args.json, {**info, "models": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
