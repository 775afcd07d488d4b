"""What the training monitor costs: a measured step against one ``check_model`` call on the same
model, and a step that is not due against nothing.

    python benchmarks/bench_monitor.py            # 7 rounds, medians
    python benchmarks/bench_monitor.py --repeat 3

The model is a small vocoder-like stack (two transposed convs with a ReLU between); the monitor
and ``check_model`` alternate round by round so load on the machine hits both alike. The
acceptance line is ``monitored / check_model`` close to 1 (the monitor adds only the scalar
extraction and the writer calls) and a not-due step in microseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from upsampcheck import check_model  # noqa: E402
from upsampcheck.monitor import UpsamplingMonitor  # noqa: E402


class ListWriter:
    """A SummaryWriter stand-in: keeps the scalars."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.ConvTranspose1d(8, 8, 16, 8), nn.ReLU(), nn.ConvTranspose1d(8, 1, 8, 4)
    ).train()
    options = {"sample_rate": 22050, "input_shape": (8, 256)}
    monitor = UpsamplingMonitor(100, writer=ListWriter(), **options)
    direct, monitored, idle = [], [], []
    check_model(model, device="cpu", **options)  # warm-up
    for _ in range(args.repeat):
        start = time.perf_counter()
        check_model(model, device="cpu", **options)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        monitor(model, 0)
        monitored.append(time.perf_counter() - start)
        start = time.perf_counter()
        for step in range(1, 100):  # none of them due
            monitor(model, step)
        idle.append((time.perf_counter() - start) / 99)
    assert model.training, "the monitor must restore train mode"
    d, m, i = (statistics.median(v) for v in (direct, monitored, idle))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.repeat} rounds (medians)")
    print(f"check_model call      {d * 1000:8.1f} ms")
    print(f"monitored step        {m * 1000:8.1f} ms   ratio to check_model {m / d:.3f}")
    print(f"step not due          {i * 1e6:8.2f} us")


if __name__ == "__main__":
    main()
