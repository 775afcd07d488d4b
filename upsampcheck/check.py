"""Run the probes through layers and turn the measurements into a :class:`Report`.

This is the Python API the CLI is a thin layer over::

    from upsampcheck import check_layer
    report = check_layer(LayerSpec("transposed", stride=4, length=5), sample_rate=16000)
    assert report.verdict == "fail"
"""

from __future__ import annotations

import math

import torch

from .analysis import LineSettings, measure_stage
from .config import Thresholds, load_thresholds
from .errors import UsageError
from .layers import LayerSpec, build_layer, edge_margin, polyphase_sums
from .report import Report, StageResult, stage_findings
from .signals import make_probes, tone_frequency

OUTPUT_SAMPLES = 2**15
"""Output samples per probe a stage is driven with (unless ``probe_samples`` says otherwise)."""


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a usage error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use --device cpu)")
    try:
        return torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use auto, cpu or cuda") from None


def check_sample_rate(sample_rate: float, factor: int) -> float:
    """The input rate ``sample_rate / factor``; a non-finite or non-positive rate is refused."""
    if (
        not isinstance(sample_rate, (int, float))
        or not math.isfinite(sample_rate)
        or sample_rate <= 0
    ):
        raise UsageError(f"sample rate must be a positive number of Hz (got {sample_rate!r})")
    return sample_rate / factor


def layer_details(spec: LayerSpec, layer: torch.nn.Module) -> dict:
    """What the report says about a built layer, polyphase sums included for transposed convs."""
    details = spec.describe()
    if spec.type == "transposed":
        sums = polyphase_sums(layer.weight.detach().double(), spec.stride)
        details["polyphase_sums"] = [round(v, 6) for v in sums.mean(0).tolist()]
    return details


def probe_length(spec: LayerSpec, probe_samples: int | None) -> int:
    """Input samples per probe: enough for :data:`OUTPUT_SAMPLES` at the output plus edges."""
    if probe_samples is not None:
        if probe_samples < 64:
            raise UsageError(f"--probe-samples must be at least 64 (got {probe_samples})")
        return probe_samples
    return math.ceil(OUTPUT_SAMPLES / spec.stride) + 2 * (spec.kernel_length + 2)


def measure_layer(
    spec: LayerSpec,
    layer: torch.nn.Module,
    fs_in: float,
    n_samples: int,
    *,
    seed: int,
    device: torch.device,
    settings: LineSettings,
) -> tuple[StageResult, int]:
    """Drive ``layer`` alone with the probe batch at ``fs_in`` (one forward pass) and measure it."""
    probes = make_probes(n_samples, fs_in, spec.channels, seed=seed)
    with torch.no_grad():
        y = layer.to(device)(probes.signals.to(device))
    margin = edge_margin(spec)
    if y.shape[-1] - 2 * margin < 256:
        raise UsageError(
            f"{n_samples} probe samples leave too little output to measure; raise --probe-samples"
        )
    measurement = measure_stage(
        probes.signals.to(device),
        y,
        probes.names,
        probes.level,
        fs_in,
        spec.stride,
        margin,
        tone_hz=tone_frequency(fs_in),
        settings=settings,
    )
    details = layer_details(spec, layer)
    stage = StageResult(0, spec.type, spec.type, spec.stride, fs_in, measurement, details)
    return stage, n_samples


def check_layer(
    spec: LayerSpec,
    sample_rate: float = 16000.0,
    *,
    seed: int = 0,
    device: str = "auto",
    probe_samples: int | None = None,
    thresholds: Thresholds | None = None,
) -> Report:
    """Check one upsampling layer; ``sample_rate`` is the rate of its **output**."""
    spec.validate()
    fs_in = check_sample_rate(sample_rate, spec.stride)
    thresholds = thresholds or load_thresholds()
    torch_device = resolve_device(device)
    settings = LineSettings(thresholds.line_floor_db, thresholds.line_prominence_db)
    layer = build_layer(spec, seed=seed)
    stage, n = measure_layer(
        spec,
        layer,
        fs_in,
        probe_length(spec, probe_samples),
        seed=seed,
        device=torch_device,
        settings=settings,
    )
    return Report(
        subject={"kind": "layer", "name": spec.type, "spec": spec.describe()},
        sample_rate_hz=float(sample_rate),
        probe_samples=n,
        seed=seed,
        device=str(torch_device),
        thresholds=thresholds,
        stages=[stage],
        findings=stage_findings(stage, thresholds),
    )
