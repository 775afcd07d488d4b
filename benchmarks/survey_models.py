#!/usr/bin/env python3
"""Run `upsampcheck model` on every real architecture that installs here, as a new user would:
first with no flags, then with the flags the model needs, and print what was found.

For each model of :data:`SURVEY` (builders in :mod:`real_models`, random init, nothing
downloaded): the exit code with no flags, the flags that made it run (if any), the stages
found (kind x factor, counted), the stages found but not measured, and the wall time. A model
whose package is absent is listed as skipped. Prints a Markdown table; exit status 0 always.

    pip install -e '.[bench]' vocos snac alias-free-torch
    python benchmarks/survey_models.py [--only demucs_v2,snac_24k]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# name: (builder, package, output rate, flag sets to try after none)
SURVEY = {
    "BigVGAN base 22 kHz": ("bigvgan_base_22k", "bigvgan", 22050, []),
    "DAC 44.1 kHz decoder": ("dac_44k_decoder", "dac", 44100, []),
    "DAC 44.1 kHz (whole codec)": ("dac_44k", "dac", 44100, [["--input-shape", "1,44100"]]),
    "EnCodec 24 kHz decoder": ("encodec_24k_decoder", "encodec", 24000, []),
    "EnCodec 24 kHz (whole codec)": (
        "encodec_24k",
        "encodec",
        24000,
        [["--input-shape", "1,24000"]],
    ),
    "speechbrain HiFi-GAN (8,8,2,2)": ("speechbrain_hifigan", "speechbrain", 22050, []),
    "Demucs v2, 700 M (channels 146)": ("demucs_700m", "demucs", 44100, []),
    "Demucs v2 (channels 64)": ("demucs_v2", "demucs", 44100, []),
    "Hybrid Demucs v3": ("hdemucs", "demucs", 44100, [["--input-shape", "2,44100"]]),
    "HT Demucs v4": ("htdemucs", "demucs", 44100, [["--input-shape", "2,343980"]]),
    "SNAC 24 kHz": ("snac_24k", "snac", 24000, [["--input-shape", "1,24576"]]),
    "Vocos (mel)": (
        "vocos_mel",
        "vocos",
        24000,
        [["--method", "decode", "--input-shape", "100,256"]],
    ),
    "alias-free-torch UpSample1d": ("alias_free_upsampler", "alias_free_torch", 16000, []),
}


def run(builder: str, fs: int, flags: list[str], out: str) -> tuple[int, float, str]:
    cmd = [sys.executable, "-m", "upsampcheck", "model", "--arch", f"real_models:{builder}"]
    cmd += ["--sample-rate", str(fs), "--no-plots", "--out", out, *flags]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, HERE])}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return proc.returncode, time.perf_counter() - start, last


def describe(out: str) -> tuple[str, str]:
    with open(os.path.join(out, "report.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    kinds = Counter(f"{s['details']['op']} x{s['factor']:g}" for s in report["stages"])
    found = ", ".join(f"{n}x {k}" if n > 1 else k for k, n in kinds.items()) or "none"
    skipped = [f["stage"] for f in report["findings"] if "not measured" in f["message"]]
    return found, (", ".join(skipped) or "-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated builder names")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    print("| model | no flags | flags needed | measured stages | found, not measured | s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="upsampcheck-survey-") as tmp:
        for i, (name, (builder, package, fs, tries)) in enumerate(SURVEY.items()):
            if only and builder not in only:
                continue
            if importlib.util.find_spec(package) is None:
                print(f"| {name} | skipped: {package} not installed | | | | |")
                continue
            out = os.path.join(tmp, f"r{i}")
            code, wall, last = run(builder, fs, [], out)
            first, used = code, "none"
            for flags in tries if code == 2 else []:
                code, wall, last = run(builder, fs, flags, out)
                if code != 2:
                    used = " ".join(flags)
                    break
            if code not in (0, 1) or not os.path.exists(os.path.join(out, "report.json")):
                print(
                    f"| {name} | exit {first} | still exit {code}: {last[:120]} | | | {wall:.0f} |"
                )
                continue
            found, skipped = describe(out)
            print(f"| {name} | exit {first} | {used} | {found} | {skipped} | {wall:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
