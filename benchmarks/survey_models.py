#!/usr/bin/env python3
"""Run `upsampcheck model` with no flags on every real architecture that builds here, as a new
user would, and print what it found: exit code, the input shape it chose, the stages with their
exact rates, what was found but not measured, the wall time and the peak memory.

Builders are in :mod:`real_models` (random init, nothing downloaded); a model whose package is
absent is listed as skipped. Each run is one process (`--no-plots`, the sample rate its project
publishes), timed from start to exit; its peak resident memory comes from `wait4`. Prints a
Markdown table and exits 0.

    pip install -e '.[bench]' vocos snac alias-free-torch
    python benchmarks/survey_models.py [--only demucs_v2,snac_24k] [--timeout 900]
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
# name: (builder, package, output rate)
SURVEY = {
    "BigVGAN base 22 kHz": ("bigvgan_base_22k", "bigvgan", 22050),
    "DAC 44.1 kHz decoder": ("dac_44k_decoder", "dac", 44100),
    "DAC 44.1 kHz (whole codec)": ("dac_44k", "dac", 44100),
    "EnCodec 24 kHz decoder": ("encodec_24k_decoder", "encodec", 24000),
    "EnCodec 24 kHz (whole codec)": ("encodec_24k", "encodec", 24000),
    "speechbrain HiFi-GAN (8,8,2,2)": ("speechbrain_hifigan", "speechbrain", 22050),
    "Demucs v2, 700 M (channels 146)": ("demucs_700m", "demucs", 44100),
    "Demucs v2 (channels 64)": ("demucs_v2", "demucs", 44100),
    "Hybrid Demucs v3": ("hdemucs", "demucs", 44100),
    "HT Demucs v4": ("htdemucs", "demucs", 44100),
    "Hybrid Demucs (torchaudio, low)": ("hdemucs_torchaudio", "torchaudio", 44100),
    "Conv-TasNet (torchaudio)": ("conv_tasnet", "torchaudio", 8000),
    "SNAC 24 kHz": ("snac_24k", "snac", 24000),
    "Vocos (mel)": ("vocos_mel", "vocos", 24000),
    "alias-free-torch UpSample1d": ("alias_free_upsampler", "alias_free_torch", 16000),
    "ParallelWaveGAN (z = 0)": ("parallel_wavegan_zero", "parallel_wavegan", 22050),
    "StyleMelGAN (z = 0)": ("style_melgan_zero", "parallel_wavegan", 22050),
    "MelGAN": ("melgan", "parallel_wavegan", 22050),
    "Multi-band MelGAN (+ PQMF)": ("multiband_melgan", "parallel_wavegan", 22050),
    "HiFi-GAN (kan-bayashi)": ("hifigan_kan_bayashi", "parallel_wavegan", 22050),
    "DCUNet-10 (asteroid)": ("dcunet", "asteroid", 16000),
    "Mimi decode path (moshi)": ("mimi_decode_path", "moshi", 24000),
}


def run(builder: str, fs: int, out: str, timeout: float) -> tuple[int, float, float, str]:
    """Exit code, wall seconds, peak RSS in MiB and the last stderr line of one run."""
    cmd = [sys.executable, "-m", "upsampcheck", "model", "--arch", f"real_models:{builder}"]
    cmd += ["--sample-rate", str(fs), "--no-plots", "--out", out]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, HERE])}
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    last = lines[-1] if lines else ""
    if wall > timeout:
        last = f"killed after {timeout:.0f} s"
    return proc.returncode, wall, usage.ru_maxrss / 1024, last


def describe(out: str) -> tuple[str, str, str]:
    """The input shape, the measured stages (op x factor @ input rate, counted) and those
    found but not measured, from the run's report.json."""
    with open(os.path.join(out, "report.json"), encoding="utf-8") as fh:
        report = json.load(fh)
    shape = ",".join(map(str, report["subject"].get("input_shape", [])))
    kinds = Counter(
        f"{s['details']['op']} x{s['factor']:g} @ {s['fs_in_hz']:g} Hz" for s in report["stages"]
    )
    found = "; ".join(f"{n}x {k}" if n > 1 else k for k, n in kinds.items()) or "none"
    skipped = [f["stage"] for f in report["findings"] if "not measured" in f["message"]]
    return shape, found, (", ".join(dict.fromkeys(skipped)) or "-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated builder names")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per model")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
    print()
    print("| model | exit | input shape | measured stages (op x factor @ input rate) "
          "| found, not measured | s | peak MiB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="upsampcheck-survey-") as tmp:
        for i, (name, (builder, package, fs)) in enumerate(SURVEY.items()):
            if only and builder not in only:
                continue
            if importlib.util.find_spec(package) is None:
                print(f"| {name} | skipped: {package} not installed | | | | | |")
                continue
            out = os.path.join(tmp, f"r{i}")
            code, wall, peak, last = run(builder, fs, out, args.timeout)
            if code not in (0, 1) or not os.path.exists(os.path.join(out, "report.json")):
                print(f"| {name} | {code} | | {last[:160]} | | {wall:.0f} | {peak:.0f} |")
            else:
                shape, found, skipped = describe(out)
                print(
                    f"| {name} | {code} | {shape} | {found} | {skipped} | {wall:.0f} | {peak:.0f} |"
                )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
