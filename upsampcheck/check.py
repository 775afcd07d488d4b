"""Run the probes through layers and stacks and turn the measurements into a :class:`Report`.

This is the Python API the CLI is a thin layer over::

    from upsampcheck import check_layer
    report = check_layer(LayerSpec("transposed", stride=4, length=5), sample_rate=16000)
    assert report.verdict == "fail"

A stack runs as one batched forward pass with every upsampler's input and output kept
(the *chain*): each stage is measured there at its own rates, lines are traced to the stage
that introduced them, and offsets to the lines they become. Each upsampler of a stack is also
driven alone with fresh probes at its own input rate (``standalone``), so its numbers match
``upsampcheck layer`` for the same layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .bounds import PROBE_SAMPLES, check_int, check_memory, check_rate, check_seed
from .config import Thresholds, load_thresholds
from .errors import UsageError
from .measure.analysis import (
    LineSettings,
    StageMeasurement,
    choose_nfft,
    excerpts,
    measure_stage,
    probe_lines,
)
from .measure.attribution import assign_origins, match_origins
from .measure.probes import make_probes, tone_frequency
from .report.findings import Report, StageResult, chain_findings, stage_findings
from .subjects.layers import LayerSpec, edge_margin, polyphase_sums
from .subjects.stack import BlockSpec, StackSpec, block_margin, build_stack, single_layer_stack

OUTPUT_SAMPLES = 2**15
"""Output samples per probe, at least (more when a stack's grid needs longer frames)."""


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


def check_sample_rate(sample_rate: float) -> float:
    """A finite rate in Hz within :data:`~.bounds.SAMPLE_RATE`, or a usage error."""
    return check_rate(sample_rate)


def stack_memory(spec: StackSpec, n_samples: int) -> float:
    """Bytes a stack check needs, from the shapes: the batch of probes at every layer's input
    and output (float32, all kept for the measurements) and twice the widest stage in float64
    for the analysis of the widest stage."""
    probes, total, factor, widest = 5, n_samples, 1, n_samples
    for layer in spec.layers:
        if isinstance(layer, LayerSpec):
            factor *= layer.stride
        total += n_samples * factor
        widest = max(widest, n_samples * factor)
    return probes * spec.channels * (4 * total + 2 * 8 * widest)


def layer_details(spec: LayerSpec, layer: torch.nn.Module) -> dict:
    """What the report says about a built layer, polyphase sums included for transposed convs."""
    details = spec.describe()
    if spec.type == "transposed":
        sums = polyphase_sums(layer.weight.detach().double(), spec.stride)
        details["polyphase_sums"] = [round(v, 6) for v in sums.mean(0).tolist()]
    return details


def probe_length(factor: int, margin: int, probe_samples: int | None) -> int:
    """Input samples per probe: the output must hold :data:`OUTPUT_SAMPLES` and four Welch
    frames of the grid-resolving length, plus ``margin`` output samples at each end."""
    if probe_samples is not None:
        return check_int(probe_samples, "--probe-samples", PROBE_SAMPLES)
    n_fft = choose_nfft(1 << 40, factor)
    return math.ceil((max(OUTPUT_SAMPLES, 4 * n_fft) + 2 * margin) / factor)


@dataclass
class Tap:
    """One upsampler's input and output during the chain pass."""

    index: int
    spec: LayerSpec
    module: torch.nn.Module
    x: torch.Tensor
    y: torch.Tensor
    margin: int
    fs_in: float
    factor_before: int


def run_chain(
    modules: list[torch.nn.Module], spec: StackSpec, signals: torch.Tensor, fs_model_in: float
) -> tuple[list[Tap], torch.Tensor, int]:
    """Forward the probe batch through the stack once, keeping each upsampler's input and
    output; returns (taps, final output, final edge margin)."""
    taps, x, margin, factor = [], signals, 0, 1
    with torch.no_grad():
        for layer, module in zip(spec.layers, modules, strict=True):
            y = module(x)
            margin = block_margin(layer, margin)
            if isinstance(layer, LayerSpec):
                fs_in = fs_model_in * factor
                taps.append(Tap(len(taps), layer, module, x, y, margin, fs_in, factor))
                factor *= layer.stride
            x = y
    if x.shape[-1] - 2 * margin < 256:
        raise UsageError(
            "too few probe samples to measure the stack's output; raise --probe-samples"
        )
    return taps, x, margin


def measure_tap(
    tap: Tap, names: tuple[str, ...], tone_hz: float, grids: list[float], settings: LineSettings
) -> StageMeasurement:
    return measure_stage(
        tap.x,
        tap.y,
        names,
        tap.fs_in,
        tap.spec.stride,
        tap.margin,
        tone_hz=tone_hz,
        grid_hz=grids,
        settings=settings,
        grid_factor=tap.factor_before * tap.spec.stride,
    )


def measure_standalone(
    spec: LayerSpec,
    module: torch.nn.Module,
    fs_in: float,
    seed: int,
    device: torch.device,
    settings: LineSettings,
) -> StageMeasurement:
    """Drive one upsampler alone with fresh probes at its own input rate."""
    margin = edge_margin(spec)
    probes = make_probes(probe_length(spec.stride, margin, None), fs_in, spec.channels, seed=seed)
    x = probes.signals.to(device)
    with torch.no_grad():
        y = module(x)
    return measure_stage(
        x,
        y,
        probes.names,
        fs_in,
        spec.stride,
        margin,
        tone_hz=tone_frequency(fs_in),
        settings=settings,
    )


def stage_name(tap: Tap, count: int) -> str:
    return tap.spec.type if count == 1 else f"{tap.index + 1}:{tap.spec.type}"


def upstream_offset_source(spec: StackSpec, tap_index: int) -> str:
    """Words for what put a DC offset in front of upsampler ``tap_index``, naming stages the
    way the report does (``the bias of 1:transposed``, ``a relu after 2:transposed``)."""
    count = len(spec.upsamplers)
    seen, source, last = 0, "", ""
    for layer in spec.layers:
        if isinstance(layer, LayerSpec):
            if seen == tap_index:
                break
            last = f"{seen + 1}:{layer.type}" if count > 1 else layer.type
            seen += 1
            if layer.bias:
                source = f"the bias of {last}"
            continue
        where = f"after {last}" if last else "at the stack input"
        if layer.type == "conv" and layer.bias:
            source = f"the bias of the conv {where}"
        elif layer.type in ("relu", "leaky_relu"):
            source = f"the {layer.type} {where}"
    return source or "upstream layers"


def check_stack(
    spec: StackSpec,
    *,
    seed: int | None = None,
    device: str = "auto",
    probe_samples: int | None = None,
    thresholds: Thresholds | None = None,
    progress: Callable[[str], None] = lambda step: None,
) -> Report:
    """Check a stack (or a single layer as a stack of one); ``spec.sample_rate`` is the rate
    of the stack's **output**. ``progress`` is told each step (the CLI's spinner)."""
    sample_rate = check_sample_rate(spec.sample_rate)
    seed = check_seed(spec.seed if seed is None else seed)
    thresholds = thresholds or load_thresholds(config=spec.thresholds, config_name=spec.source)
    torch_device = resolve_device(device)
    settings = LineSettings(thresholds.line_floor_db, thresholds.line_prominence_db)
    fs_model_in = sample_rate / spec.factor

    progress("building the stack")
    modules = [m.to(torch_device).eval() for m in build_stack(spec, seed)]
    margin = 0
    for layer in spec.layers:
        margin = block_margin(layer, margin)
    n_samples = probe_length(spec.factor, margin, probe_samples)
    longest = max(layer.kernel_length for layer in spec.upsamplers)
    if longest >= n_samples:
        raise UsageError(
            f"a kernel of length {longest} is longer than the probe ({n_samples} samples); "
            "raise --probe-samples or shorten the kernel"
        )
    check_memory(stack_memory(spec, n_samples), "lower --probe-samples or --channels")
    probes = make_probes(n_samples, fs_model_in, spec.channels, seed=seed)
    progress(f"probing {len(spec.upsamplers)} stage(s) in one batched pass")
    taps, output, out_margin = run_chain(
        modules, spec, probes.signals.to(torch_device), fs_model_in
    )
    tone_hz = tone_frequency(fs_model_in)

    stages: list[StageResult] = []
    upstream: list = []
    grids_all = [fs_model_in * f for f in _cumulative_factors(spec)]
    for tap in taps:
        grids = grids_all[: tap.index + 1]
        progress(f"measuring {stage_name(tap, len(taps))}")
        measurement = measure_tap(tap, probes.names, tone_hz, grids, settings)
        name = stage_name(tap, len(taps))
        bin_hz = measurement.freqs_hz[1]
        assign_origins(measurement.lines, upstream, tap.fs_in, tap.spec.stride, name, 2 * bin_hz)
        upstream = measurement.lines
        details = layer_details(tap.spec, tap.module)
        if len(spec.layers) > 1:
            alone = measure_standalone(
                tap.spec, tap.module, tap.fs_in, seed, torch_device, settings
            )
            details["standalone"] = alone
            details["offset_source"] = upstream_offset_source(spec, tap.index)
        stages.append(
            StageResult(
                tap.index, name, tap.spec.type, tap.spec.stride, tap.fs_in, measurement, details
            )
        )

    findings = [f for stage in stages for f in stage_findings(stage, thresholds)]
    output_lines = stages[-1].measurement.lines
    if isinstance(spec.layers[-1], BlockSpec):  # blocks after the last upsampler
        n_fft = choose_nfft(output.shape[-1] - 2 * out_margin, spec.factor)
        _, output_lines = probe_lines(
            output, probes.names, sample_rate, out_margin, n_fft, grids_all, settings
        )
        match_origins(output_lines, stages[-1].measurement.lines, "output", 2 * sample_rate / n_fft)
    if len(spec.layers) > 1:
        findings += chain_findings(stages, output_lines, thresholds)
    return Report(
        subject={"kind": "layer", "name": spec.name, "spec": spec.describe()},
        sample_rate_hz=sample_rate,
        probe_samples=n_samples,
        seed=seed,
        device=str(torch_device),
        thresholds=thresholds,
        stages=stages,
        findings=findings,
        output_lines=output_lines if len(spec.layers) > 1 else None,
        output_excerpts=(
            excerpts(output, probes.names, out_margin, sample_rate)
            if len(spec.layers) > 1
            else None
        ),
    )


def _cumulative_factors(spec: StackSpec) -> list[int]:
    """The factor from the stack input to each upsampler's input."""
    factors, total = [], 1
    for layer in spec.upsamplers:
        factors.append(total)
        total *= layer.stride
    return factors


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
    stack = single_layer_stack(spec, check_sample_rate(sample_rate))
    return check_stack(
        stack, seed=seed, device=device, probe_samples=probe_samples, thresholds=thresholds
    )
