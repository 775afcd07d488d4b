#!/usr/bin/env python3
"""Wall-clock and peak-memory benchmark of `upsampcheck audio` on a 10-minute 48 kHz file.

Generates (in a temporary folder, in a child process with numpy and soundfile) a stereo
24-bit WAV of speech-like program: a gliding harmonic voice and hiss under a syllable envelope
with pauses, faint room noise, and stationary lines on the fs/256 grid at -50 dB. The same
program is written 1 minute and 10 minutes long, so the two peak RSS figures show whether
memory grows with the file (it should not: both passes stream blocks); and a 3-second,
1024-channel 16-bit WAV of noise, whose peak RSS shows that memory does not grow with the
channel count either.

With ``--baseline DIR`` (a checkout of another commit, e.g. ``git archive <commit> | tar -x -C
DIR``), its package runs the 10-minute file in the same rounds, and the closing lines give both
medians and their ratio. Every command runs as ``python -P -m upsampcheck`` with ``PYTHONPATH``
set to the tree it measures. Finally one in-process run on the 10-minute file prints the time the
phase-coherence test takes (``FileResult.coherence_seconds``).

Runs every command --repeat times round-robin after --warmup untimed rounds and prints
medians (min/max), CPU time and peak RSS (ru_maxrss of the child; `import torch` alone is
timed too, since the report code imports it), then the targets:

    10-minute file, end to end          target < 10 s
    peak RSS 10 min / peak RSS 1 min    target < 1.25 (bounded memory)
    10 min / baseline 10 min            target <= 1.5 (with --baseline)
    peak RSS 1024 channels              target < 1536 MiB

PASS/MISS is informational: the script always exits 0. This process uses only the standard
library; numpy and soundfile are imported in the child that writes the files.

    python benchmarks/bench_audio.py [--repeat 3] [--warmup 1] [--json figures.json]
        [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from common import ENV, REPO, machine, round_robin, summary, write_json

TARGET_S = 10.0
MEMORY_RATIO_TARGET = 1.25
BASELINE_RATIO_TARGET = 1.5
CHANNELS_RSS_TARGET_MIB = 1536.0
RATE = 48000

MANY = r"""
import sys
import numpy as np
import soundfile as sf

rng = np.random.default_rng(0)
with sf.SoundFile(sys.argv[1], "w", 44100, 1024, "PCM_16") as out:
    for _ in range(3):
        out.write((0.05 * rng.standard_normal((44100, 1024))).astype(np.float32))
"""

COHERENCE = r"""
import sys, time
from upsampcheck.audio.analyse import analyse_file
from upsampcheck.config import load_audio_thresholds

start = time.perf_counter()
result = analyse_file(sys.argv[1], load_audio_thresholds())
total = time.perf_counter() - start
print(f"{result.coherence_seconds:.3f} {total:.3f} {result.coherence['candidates']}")
"""


def tool_in(tree: str) -> list[str]:
    """``python -P -m upsampcheck`` importing the package from ``tree`` (``-P``: not from the
    working directory, which ``-m`` would put first)."""
    return ["env", f"PYTHONPATH={tree}", sys.executable, "-P", "-m", "upsampcheck"]


WRITER = r"""
import sys
import numpy as np
import soundfile as sf

path, seconds, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
block = 10 * rate
with sf.SoundFile(path, "w", rate, 2, "PCM_24") as out:
    done, phase = 0, 0.0
    while done < seconds * rate:
        n = int(min(block, seconds * rate - done))
        t = (done + np.arange(n)) / rate
        pitch = 140 * np.exp(0.3 * np.sin(2 * np.pi * 0.21 * t))
        inst = phase + 2 * np.pi * np.cumsum(pitch) / rate
        phase = float(inst[-1])
        voice = sum(np.cos(h * inst) / h for h in range(1, 30))
        hiss = np.convolve(rng.standard_normal(n), [1, -1], "same")
        syllable = np.sin(np.pi * ((t * 4) % 1)) ** 0.5
        phrase = ((t % 3.0) < 2.0).astype(float)
        program = 0.05 * syllable * phrase * (voice / 3 + 0.3 * hiss)
        room = 1e-4 * rng.standard_normal((n, 2))
        lines = sum(
            0.05 * np.sqrt(2) * 10 ** (-50 / 20) * np.cos(2 * np.pi * m * rate / 256 * t)
            for m in (8, 21, 64, 90)
        )
        out.write(program[:, None] * [1.0, 0.8] + room + lines[:, None])
        done += n
"""


def write_file(path: str, seconds: float) -> None:
    subprocess.run(
        [sys.executable, "-c", WRITER, path, str(seconds), str(RATE)], check=True, env=ENV
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--baseline", metavar="DIR", help="a checkout of another commit")
    args = parser.parse_args()

    tool = tool_in(REPO)
    info = machine(tool, args.repeat, args.warmup, modules="numpy,soundfile")
    print()
    with tempfile.TemporaryDirectory(prefix="upsampcheck-bench-audio-") as tmp:
        short, long = os.path.join(tmp, "one_minute.wav"), os.path.join(tmp, "ten_minutes.wav")
        write_file(short, 60)
        write_file(long, 600)
        many = os.path.join(tmp, "many_channels.wav")
        subprocess.run([sys.executable, "-c", MANY, many], check=True, env=ENV)
        size = os.path.getsize(long) / 2**20
        print(f"files   : 48 kHz stereo PCM_24 WAV, 1 min and 10 min ({size:.0f} MiB);")
        many_mib = os.path.getsize(many) / 2**20
        print(f"          1024 channels x 3 s at 44.1 kHz ({many_mib:.0f} MiB)\n")
        benches = {
            "import torch": ([sys.executable, "-c", "import torch"], (0,), False),
            "audio 1 min": (tool + ["audio", short], (0, 1), True),
            "audio 10 min": (tool + ["audio", long], (0, 1), True),
            "audio 10 min --no-plots": (tool + ["audio", long, "--no-plots"], (0, 1), True),
            "audio 1024 ch --no-plots": (tool + ["audio", many, "--no-plots"], (0, 1), True),
        }
        if args.baseline:
            old = tool_in(os.path.abspath(args.baseline))
            benches["baseline 10 min"] = (old + ["audio", long], (0, 1), True)
            benches["baseline 10 min --no-plots"] = (
                old + ["audio", long, "--no-plots"], (0, 1), True,
            )  # fmt: skip
        runs = round_robin(benches, args.repeat, args.warmup, tmp)
        proc = subprocess.run(
            [sys.executable, "-c", COHERENCE, long], capture_output=True, text=True, env=ENV
        )
        coherence_s, analysis_s, candidates = proc.stdout.split()

    stats = {
        name: {
            "wall_s": summary([r["wall_s"] for r in rs]),
            "cpu_s": summary([r["cpu_s"] for r in rs]),
            "peak_rss_mib": summary([r["peak_rss_mib"] for r in rs]),
        }
        for name, rs in runs.items()
    }
    header = f"{'command':<26}{'median s':>10}{'min s':>9}{'max s':>9}{'cpu s':>9}{'RSS MiB':>10}"
    print(header)
    for name, s in stats.items():
        w = s["wall_s"]
        print(
            f"{name:<26}{w['median']:>10.2f}{w['min']:>9.2f}{w['max']:>9.2f}"
            f"{s['cpu_s']['median']:>9.2f}{s['peak_rss_mib']['median']:>10.0f}"
        )
    print()
    wall = stats["audio 10 min"]["wall_s"]["median"]
    rss_ratio = (
        stats["audio 10 min"]["peak_rss_mib"]["median"]
        / stats["audio 1 min"]["peak_rss_mib"]["median"]
    )
    torch_rss = stats["import torch"]["peak_rss_mib"]["median"]
    own = stats["audio 10 min"]["peak_rss_mib"]["median"] - torch_rss
    print(
        f"{'peak RSS 10 min - import torch (MiB)':<36}{own:>8.0f}   (info: the tool's own memory)"
    )
    print(
        f"{'phase coherence, 10-minute file (s)':<36}{float(coherence_s):>8.2f}   (info: of "
        f"{float(analysis_s):.2f} s analysing it in-process; {candidates} candidate frequencies)"
    )
    checks = [
        ("10-minute file, end to end (s)", wall, TARGET_S),
        ("peak RSS 10 min / 1 min", rss_ratio, MEMORY_RATIO_TARGET),
        (
            "peak RSS 1024 channels (MiB)",
            stats["audio 1024 ch --no-plots"]["peak_rss_mib"]["median"],
            CHANNELS_RSS_TARGET_MIB,
        ),
    ]
    if args.baseline:
        for mine, theirs in (
            ("audio 10 min", "baseline 10 min"),
            ("audio 10 min --no-plots", "baseline 10 min --no-plots"),
        ):
            ratio = stats[mine]["wall_s"]["median"] / stats[theirs]["wall_s"]["median"]
            checks.append((f"{mine} / baseline (time)", ratio, BASELINE_RATIO_TARGET + 1e-9))
            memory = stats[mine]["peak_rss_mib"]["median"] / stats[theirs]["peak_rss_mib"]["median"]
            print(f"{mine + ' / baseline (RSS)':<36}{memory:>8.2f}   (info)")
    for label, value, target in checks:
        verdict = "PASS" if value < target else "MISS"
        print(f"{label:<36}{value:>8.2f}   target < {target:g}   {verdict}")
    write_json(
        args.json,
        {
            **info,
            "commands": stats,
            "own_peak_rss_mib": own,
            "coherence_s": float(coherence_s),
            "targets": {label: {"value": v, "target": t, "pass": v < t} for label, v, t in checks},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
