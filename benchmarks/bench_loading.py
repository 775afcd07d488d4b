"""What hostile keys cost when a checkpoint loads: one 1 MB key, and 200,000 keys.

    python benchmarks/bench_loading.py            # 5 timed runs per case, medians
    python benchmarks/bench_loading.py --repeat 3 --json figures.json

Each case is a GAN-style ``torch.save`` state dict: the weights of a small vocoder-like
architecture (:func:`Vocoder`) under ``generator.``, beside keys made to be expensive:

- ``1 MB key``: one more key of 2**20 characters (``ddd...d.x``). The weight-norm key pattern
  of the old code retried its identifier from every position of such a key (quadratic: about
  an hour at 1 MB; 16 s at 64,000 characters).
- ``200,000 keys``: 200,000 more keys under as many distinct prefixes (``p0.x``, ``p1.x``...),
  all one shared tensor, so the file stays small (4 MB). The old prefix alignment compared
  every prefix with every key (24 s at 20,000).

Both load: ``load_model`` strips ``generator.`` and ignores the rest. The timed span is
``load_model`` on the file (``torch.load`` included, the architecture built from ``--arch``),
in this process, after one warm-up; ``torch.load`` alone on the same file is timed beside it,
so the tool's own key handling is the difference. The acceptance line is both medians under
2 s. The script always exits 0: it reports figures and does not gate a build.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from upsampcheck.subjects.loading import load_model  # noqa: E402

TARGET_S = 2.0
KEY_CHARS = 2**20
MANY_KEYS = 200_000


def Vocoder() -> nn.Module:  # noqa: N802 (built by --arch bench_loading:Vocoder)
    """A mel-to-waveform stack: a conv, two transposed convs (x8, x4)."""
    return nn.Sequential(
        nn.Conv1d(80, 64, 7, padding=3),
        nn.ConvTranspose1d(64, 32, 16, 8, padding=4),
        nn.LeakyReLU(0.1),
        nn.ConvTranspose1d(32, 1, 8, 4, padding=2),
    )


def build(folder: Path) -> dict[str, Path]:
    """The two checkpoints, written into ``folder``."""
    torch.manual_seed(1)
    generator = {f"generator.{k}": v for k, v in Vocoder().state_dict().items()}
    shared = torch.zeros(1)
    cases = {
        "1 MB key": {**generator, "d" * KEY_CHARS + ".x": shared},
        "200,000 keys": {**generator, **{f"p{i}.x": shared for i in range(MANY_KEYS)}},
    }
    paths = {}
    for name, state in cases.items():
        paths[name] = folder / (name.replace(" ", "_").replace(",", "") + ".pt")
        torch.save(state, paths[name])
    return paths


def time_once(path: Path) -> tuple[float, float, list[str]]:
    """Seconds of ``torch.load`` alone and of ``load_model``; ``load_model``'s notes."""
    start = time.perf_counter()
    with path.open("rb") as fh:
        torch.load(fh, map_location="cpu", weights_only=True)
    raw = time.perf_counter() - start
    start = time.perf_counter()
    loaded = load_model(path, "bench_loading:Vocoder")
    return raw, time.perf_counter() - start, loaded.notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine : os.cpu_count() = {os.cpu_count()}, load average {load}")
    print(f"torch   : {torch.__version__}")
    print(f"runs    : {args.repeat} timed per case, after 1 warm-up, in this process")
    figures: dict[str, dict] = {"load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp))
        for name, path in paths.items():
            _, _, notes = time_once(path)  # warm-up
            raw, total = [], []
            for _ in range(args.repeat):
                r, t, _ = time_once(path)
                raw.append(r)
                total.append(t)
            med = statistics.median(total)
            figures[name] = {
                "file_bytes": path.stat().st_size,
                "load_model_s": {"median": med, "min": min(total), "max": max(total)},
                "torch_load_s": {"median": statistics.median(raw)},
                "notes": notes,
                "pass": med < TARGET_S,
            }
            verdict = "PASS" if med < TARGET_S else "MISS"
            print(
                f"{name:13s}: {path.stat().st_size / 2**20:5.1f} MB file, load_model median"
                f" {med:.3f} s (min {min(total):.3f}, max {max(total):.3f}),"
                f" torch.load alone {statistics.median(raw):.3f} s"
                f"  [{verdict}: < {TARGET_S:g} s]"
            )
            print(f"{'':13s}  {'; '.join(notes)}")
    if args.json:
        import json

        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
