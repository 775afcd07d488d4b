"""A training run as users have one: a small upsampler trained in the test, checkpoints every
100 steps. Its output line falls over training and stays measurable (reduced, not removed, as
the talk says); the trend orders the checkpoints by their own step; ``upsampcheck trend`` over
folders made by separate processes gives the multi-checkpoint run's trend; the monitor logs
the same numbers to TensorBoard without a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from upsampcheck.cli import main
from upsampcheck.monitor import UpsamplingMonitor
from upsampcheck.report.trend import order_checkpoints

ARCH = '''
from torch import nn


def Up():
    """Partial overlap: kernel 5, stride 4. Only learning can equalise its polyphase sums."""
    return nn.ConvTranspose1d(1, 1, 5, 4, bias=False)
'''
STEPS, EVERY = 300, 100
MODEL_ARGS = ["--arch", "trainfix:Up", "--sample-rate", "16000", "--input-shape", "1,4096"]


def batch(generator: torch.Generator, size: int = 16, length: int = 64) -> torch.Tensor:
    """Smooth signals with a DC offset: sums of low sines at the input rate."""
    n = torch.arange(length, dtype=torch.float32)
    freqs = torch.rand(size, 3, 1, generator=generator) * 0.08
    phases = torch.rand(size, 3, 1, generator=generator) * 6.283
    x = torch.cos(6.283 * freqs * n + phases).sum(1, keepdim=True)
    return 0.3 * x + torch.randn(size, 1, 1, generator=generator)


def train(folder: Path, monitor: UpsamplingMonitor | None = None) -> nn.Module:
    """Train ``Up`` to interpolate linearly by 4; a checkpoint every ``EVERY`` steps."""
    torch.manual_seed(0)  # the architecture's seeded initialisation, as --arch builds it
    model = nn.ConvTranspose1d(1, 1, 5, 4, bias=False)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for step in range(STEPS + 1):
        if step % EVERY == 0:
            state = {"state_dict": model.state_dict(), "global_step": step}
            torch.save(state, folder / f"ckpt_{step}.pt")  # unpadded: text order is wrong
        if monitor is not None:
            monitor(model, step)
        x = batch(generator)
        target = F.interpolate(x, scale_factor=4, mode="linear", align_corners=False)
        y = model(x)[..., : target.shape[-1]]
        loss = (y - target)[..., 8:-8].pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The trained run: checkpoints, the monitor's TensorBoard log, the multi-checkpoint
    report and the per-checkpoint reports made by separate processes."""
    root = tmp_path_factory.mktemp("training")
    (root / "trainfix.py").write_text(ARCH)
    ckpts = root / "ckpts"
    ckpts.mkdir()
    sys.path.insert(0, str(root))
    try:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(root / "tb"))
        monitor = UpsamplingMonitor(EVERY, sample_rate=16000, input_shape=(1, 4096), writer=writer)
        train(ckpts, monitor)
        writer.close()
        paths = sorted(str(p) for p in ckpts.glob("*.pt"))
        code = main(["model", *paths, *MODEL_ARGS, "--out", str(root / "series")])
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("trainfix", None)
    assert code == 1  # the partial overlap never fully goes
    for path in ckpts.glob("*.pt"):
        proc = subprocess.run(
            [sys.executable, "-m", "upsampcheck", "model", str(path), *MODEL_ARGS,
             "--no-plots", "--out", str(root / "matrix" / path.stem)],
            cwd=root, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode in (0, 1), proc.stderr
    return root


def formula_db(path: Path, stride: int = 4) -> float:
    """The loudest DC line of a transposed conv from its polyphase sums (oracles.py):
    ``2 |W_m / s|²`` (``|W_{s/2} / s|²`` at the Nyquist) re the white-noise gain ``Σw² / s``."""
    w = torch.load(path, weights_only=True)["state_dict"]["weight"].double().flatten()
    sums = torch.zeros(stride, dtype=torch.float64)
    for k, value in enumerate(w):
        sums[k % stride] += value
    spectrum = torch.fft.fft(sums.to(torch.complex128)) / stride
    gain = (w**2).sum() / stride
    powers = [2 * spectrum[m].abs() ** 2 for m in range(1, stride // 2)]
    powers.append(spectrum[stride // 2].abs() ** 2)
    return float(10 * torch.log10(max(powers) / gain))


def rows(trend: dict) -> list[dict]:
    """The checkpoints' rows without the report paths (they name where each report lies)."""
    return [{k: v for k, v in row.items() if k != "report"} for row in trend["checkpoints"]]


def test_the_output_line_falls_over_training_and_stays_measurable(run):
    trend = json.loads((run / "series" / "trend.json").read_text())
    assert trend["ordered_by"] == "step"
    assert [row["step"] for row in trend["checkpoints"]] == [0, 100, 200, 300]
    levels = [row["output_line_db"] for row in trend["checkpoints"]]
    assert all(level is not None for level in levels)  # reduced, not removed
    assert levels[-1] < levels[0] - 6
    assert all(b < a for a, b in zip(levels, levels[1:], strict=False))
    assert {row["output_line_hz"] for row in trend["checkpoints"]} <= {4000.0, 8000.0}
    expected = [
        formula_db(run / "ckpts" / f"ckpt_{row['step']}.pt") for row in trend["checkpoints"]
    ]
    assert np.allclose(levels, expected, atol=0.01), (levels, expected)


def test_the_trend_picture_shows_the_output_line(run):
    import matplotlib.image

    image = matplotlib.image.imread(run / "series" / "trend.png")
    dark = (image[..., :3].max(-1) < 0.2).mean()
    assert image.shape[0] > 300 and dark > 0.003  # the thick black output line is drawn


def test_cause_texts_name_learned_weights_for_trained_checkpoints(run):
    first = json.loads((run / "series" / "ckpt_0" / "report.json").read_text())
    last = json.loads((run / "series" / "ckpt_300" / "report.json").read_text())
    assert first["subject"]["weights"] == "initialization"
    assert last["subject"]["weights"] == "learned"
    causes = " ".join(f["cause"] for f in last["findings"] if f["check"] == "tonal")
    assert "weight initialization" not in causes


def test_trend_over_folders_from_separate_processes_matches_the_series(run, capsys):
    code = main(["trend", str(run / "matrix"), "--out", str(run / "merged"), "--format", "json"])
    capsys.readouterr()
    assert code == 1
    merged = json.loads((run / "merged" / "trend.json").read_text())
    series = json.loads((run / "series" / "trend.json").read_text())
    assert rows(merged) == rows(series)
    assert {k: v for k, v in merged.items() if k != "checkpoints"} == {
        k: v for k, v in series.items() if k != "checkpoints"
    }


def test_the_monitor_logged_the_same_numbers_to_tensorboard(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    logged = events.Scalars("upsampcheck/output_line_db")
    series = json.loads((run / "series" / "trend.json").read_text())
    assert [e.step for e in logged] == [0, 100, 200, 300]
    expected = [row["output_line_db"] for row in series["checkpoints"]]
    assert np.allclose([e.value for e in logged], expected, atol=0.006)  # JSON keeps 2 digits
    assert "upsampcheck/failing" in events.Tags()["scalars"]


def test_checkpoints_without_steps_sort_in_natural_order(tmp_path):
    for name in ("epoch10.pt", "epoch2.pt", "epoch1.pt"):
        torch.save({"w": torch.zeros(1)}, tmp_path / name)
    ordered = order_checkpoints(list(tmp_path.glob("*.pt")))
    assert [p.name for p, _ in ordered] == ["epoch1.pt", "epoch2.pt", "epoch10.pt"]


def test_the_lightning_callback_logs_through_log_dict(monkeypatch):
    lightning = types.ModuleType("lightning")
    pytorch = types.ModuleType("lightning.pytorch")
    pytorch.Callback = type("Callback", (), {})
    lightning.pytorch = pytorch
    monkeypatch.setitem(sys.modules, "lightning", lightning)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", pytorch)
    import upsampcheck.monitor as monitor_module

    monkeypatch.delitem(monitor_module.__dict__, "UpsamplingCallback", raising=False)
    callback = monitor_module.UpsamplingCallback(
        2, module="generator", sample_rate=16000, input_shape=(1, 1024)
    )
    logged = []
    torch.manual_seed(0)
    module = types.SimpleNamespace(
        generator=nn.ConvTranspose1d(1, 1, 5, 4, bias=False), log_dict=logged.append
    )
    for step in (1, 2):
        callback.on_train_batch_end(types.SimpleNamespace(global_step=step), module, None, None, 0)
    (scalars,) = logged  # step 1 is skipped
    assert scalars["upsampcheck/failing"] >= 1 and "upsampcheck/output_line_db" in scalars


class MediaWriter:
    """A writer with TensorBoard's media methods, recording what it is given."""

    def __init__(self) -> None:
        self.scalars: dict[str, float] = {}
        self.audio: dict[str, tuple[np.ndarray, int]] = {}
        self.images: dict[str, np.ndarray] = {}

    def add_scalar(self, tag, value, step):
        self.scalars[tag] = value

    def add_audio(self, tag, samples, step, sample_rate):
        self.audio[tag] = (samples, sample_rate)

    def add_image(self, tag, image, step, dataformats):
        assert dataformats == "HWC"
        self.images[tag] = image


def test_the_monitor_logs_the_outputs_buzz_and_the_summary_figure():
    """Two transposed convs with biases: the first's bias, a DC under silence, becomes lines
    at multiples of the second's input rate. The logged clip is that buzz with its mean
    removed, at -1 dBFS peak and the output's rate; the figure is the report's summary."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose1d(1, 1, 5, 4), nn.ConvTranspose1d(1, 1, 5, 4))
    writer = MediaWriter()
    monitor = UpsamplingMonitor(1, sample_rate=16000, input_shape=(1, 256), writer=writer)
    monitor(model, 0)
    samples, rate = writer.audio["upsampcheck/output_silence"]
    assert rate == 16000 and samples.shape[0] == 1
    assert abs(samples.mean()) < 1e-3 * np.abs(samples).max()
    assert 20 * np.log10(np.abs(samples).max()) == pytest.approx(-1.0, abs=1e-3)
    period = samples[0, :64]  # the buzz repeats every 4 output samples (the second's input)
    assert np.allclose(samples[0, 4:68], period, atol=1e-5)
    image = writer.images["upsampcheck/summary"]
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 300
    assert image.std() > 0.05  # a drawn figure, not a blank page
    quiet = UpsamplingMonitor(
        1, sample_rate=16000, input_shape=(1, 256), writer=MediaWriter(), media=False
    )
    quiet(model, 0)
    assert quiet.writer.audio == {} and quiet.writer.images == {}


def test_the_trend_picture_shows_failing_counts_when_no_line_was_found(tmp_path):
    """Only the output's offset fails: no line anywhere. The picture still says so."""
    import matplotlib.image

    from upsampcheck.outputs.plotting import plot_trend

    rows = [
        {"name": f"ck{i}", "step": 100 * i, "output_line_db": None, "worst_line_db": {},
         "failing": failing, "verdict": "fail" if failing else "pass"}
        for i, failing in enumerate([2, 1, 0])
    ]  # fmt: skip
    trend = {"ordered_by": "step", "stages": [], "checkpoints": rows}  # no red threshold line
    plot_trend(trend, tmp_path / "trend.png")
    image = matplotlib.image.imread(tmp_path / "trend.png")[..., :3]
    red = (image[..., 0] > 0.6) & (image[..., 1] < 0.35) & (image[..., 2] < 0.35)
    assert red.sum() > 300  # the failing-count markers and their axis are drawn in red
