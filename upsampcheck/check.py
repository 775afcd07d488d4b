"""Run the probes through layers and stacks and turn the measurements into a :class:`Report`.

This is the Python API the CLI is a thin layer over::

    from upsampcheck import check_layer
    report = check_layer(LayerSpec("transposed", stride=4, length=5), sample_rate=16000)
    assert report.verdict == "fail"

A stack runs as one batched forward pass of the periodic probes (the multitone, silence and
DC, whole periods of ``M`` samples at the stack input) plus the figure-only sweep and tone (the
*chain*): each upsampler is measured on two whole periods of its input and output as soon as
they exist (:func:`~.measure.analysis.measure_stage`), lines are traced to the stage that
introduced them, and offsets to the lines they become. Each upsampler of a stack is also
driven alone with fresh probes at its own input rate (``standalone``), so its numbers match
``upsampcheck layer`` for the same layer; its filtering numbers in the chain are those.
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
    PERIODIC,
    LineSettings,
    StageMeasurement,
    StagePlan,
    adopt_standalone,
    excerpt,
    interior,
    measure_stage,
    output_lines,
)
from .measure.attribution import assign_origins, match_origins
from .measure.multitone import design_multitone, groups_for, min_period
from .measure.probes import make_probes
from .report.findings import (
    Report,
    StageResult,
    chain_findings,
    periodicity_findings,
    stage_findings,
)
from .subjects.layers import LayerSpec, polyphase_sums
from .subjects.stack import (
    BlockSpec,
    StackSpec,
    block_margin,
    build_stack,
    output_length,
    single_layer_stack,
)

OUTPUT_SAMPLES = 2**15
"""Output samples per probe period and pictures, at least (more when the first stage's band
needs more bins)."""
PERIODS = 2
"""Steady-state periods analysed (the last two are compared)."""
DTYPE = torch.float64
"""Layers and stacks are built here, so they run in float64: their numbers are the closed
forms to float64 precision, and no thread count changes a digit of report.json (float32
round-off, which depends on how a reduction is split across threads, never reaches it)."""
DISPLAY = ("sweep", "tone")
"""Probes run for the figures only (not periodic)."""


def resolve_device(device: str) -> torch.device:
    """The device ``--device`` names: ``auto`` (CUDA when present), ``cpu``, ``cuda``,
    ``cuda:N`` or ``mps``, and it must be here; anything else is a one-line usage error.

    Only devices that compute are accepted: torch also parses ``meta`` (shapes without values),
    ``cuda:99`` or backends this build lacks, and those used to fail deep inside the check.
    """
    name = device.strip().lower() if isinstance(device, str) else ""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    kind, colon, index = name.partition(":")
    if kind == "cuda" and (not colon or (index.isdigit() and index.isascii() and len(index) < 4)):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError("--device cuda: no CUDA device is available here (use --device cpu)")
        if colon and int(index) >= count:
            raise UsageError(
                f"--device {name}: there are {count} CUDA device(s) here, cuda:0 to"
                f" cuda:{count - 1}"
            )
        return torch.device(name)
    if name == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise UsageError("--device mps: no Apple GPU (MPS) is available here")
        return torch.device("mps")
    shown = device.encode("unicode_escape").decode("ascii")[:40]
    raise UsageError(f"unknown device {shown!r}; use auto, cpu, cuda, cuda:N or mps")


def check_sample_rate(sample_rate: float) -> float:
    """A finite rate in Hz within :data:`~.bounds.SAMPLE_RATE`, or a usage error."""
    return check_rate(sample_rate)


def stack_memory(spec: StackSpec, n_samples: int) -> float:
    """Bytes a stack check needs, from the shapes: the probe rows at two consecutive layers
    (float64, :data:`DTYPE`; each upsampler is measured as soon as its output exists) and its
    analysed periods four times over (folds, spectra), for the widest layer."""
    probes, factor, widest = 5, 1, n_samples
    for layer in spec.layers:
        if isinstance(layer, LayerSpec):
            factor *= layer.stride
        widest = max(widest, n_samples * factor)
    return probes * spec.channels * (8 * 2 * widest + 4 * 8 * widest)


def layer_details(spec: LayerSpec, layer: torch.nn.Module) -> dict:
    """What the report says about a built layer, polyphase sums included for transposed convs."""
    details = spec.describe()
    if spec.type == "transposed":
        sums = polyphase_sums(layer.weight.detach().double(), spec.stride)
        details["polyphase_sums"] = [round(v, 6) for v in sums.mean(0).tolist()]
    return details


@dataclass(frozen=True)
class StackLayout:
    """How long the periodic probe is: the multitone period ``period`` (``M`` at the stack
    input) and ``pad`` input samples before and after the :data:`PERIODS` analysed periods,
    enough for every layer's boundary transient (``n_samples = PERIODS · M + 2 · pad``)."""

    period: int
    pad: int

    @property
    def n_samples(self) -> int:
        return PERIODS * self.period + 2 * self.pad


def fits(layers: list, period: int, pad: int) -> bool:
    """True when every upsampler's input and output hold :data:`PERIODS` whole periods clear of
    the boundary margins, for a probe of ``PERIODS · period + 2 · pad`` samples."""
    n, margin, factor = PERIODS * period + 2 * pad, 0, 1
    for layer in layers:
        out, out_margin = output_length(layer, n), block_margin(layer, margin)
        if isinstance(layer, LayerSpec):
            periods = PERIODS * period * factor
            if n - 2 * margin < periods or out - 2 * out_margin < periods * layer.stride:
                return False
            factor *= layer.stride
        n, margin = out, out_margin
    return n - 2 * margin >= PERIODS * period * factor


def stack_layout(spec: StackSpec, probe_samples: int | None, notes: list[str]) -> StackLayout:
    """The period and padding for ``spec``: the shortest period that gives the first stage
    enough bins (:func:`~.measure.multitone.min_period`) and, without ``probe_samples``, at
    least :data:`OUTPUT_SAMPLES` output samples per analysed span; with ``probe_samples``, the
    longest period that fits in that many samples (extended, with a note, when too short)."""
    shortest = min_period(groups_for(spec.channels))

    def pad_for(period: int) -> int:
        pad = 0
        while not fits(spec.layers, period, pad):
            pad += max(1, period // 16)
        return pad

    if probe_samples is None:
        period = shortest
        while PERIODS * period * spec.factor < OUTPUT_SAMPLES:
            period *= 2
        return StackLayout(period, pad_for(period))
    check_int(probe_samples, "--probe-samples", PROBE_SAMPLES)
    period = shortest
    while StackLayout(2 * period, pad_for(2 * period)).n_samples <= probe_samples:
        period *= 2
    layout = StackLayout(period, pad_for(period))
    if layout.n_samples > probe_samples:
        notes.append(
            f"--probe-samples {probe_samples} is too short for {PERIODS} periods of the "
            f"{shortest}-sample multitone the first stage needs; used {layout.n_samples}"
        )
    return layout


@dataclass
class StageRun:
    """One upsampler measured during a pass: its measurement and where it sits."""

    index: int
    spec: LayerSpec
    module: torch.nn.Module
    fs_in: float
    measurement: StageMeasurement


def windows(t: torch.Tensor, margin: int, span: int) -> torch.Tensor:
    """``span`` samples of ``t`` from ``margin`` on: whole periods clear of the boundary."""
    return t[..., margin : margin + span]


def run_stack(
    layers: list,
    modules: list[torch.nn.Module],
    layout: StackLayout,
    fs0: float,
    channels: int,
    seed: int,
    device: torch.device,
    settings: LineSettings,
) -> tuple[list[StageRun], torch.Tensor, int, dict[str, torch.Tensor]]:
    """Drive the stack with the periodic probes (and, for the figures, the sweep and tone),
    measuring each upsampler as soon as its output exists (so at most one stage's signals are
    held). Returns the stage runs, the final output's analysed periods ``(3, C, P · N)``,
    ``N`` (the output period) and every probe's final output ``(C, T)`` by name (to hear)."""
    mt = design_multitone(layout.period, channels, seed, 0.1)
    periodic = make_probes(layout.n_samples, fs0, channels, seed=seed, names=PERIODIC, multitone=mt)
    shown = make_probes(display_length(layers), fs0, channels, seed=seed, names=DISPLAY)
    x, x_shown = (p.signals.to(device, DTYPE) for p in (periodic, shown))
    runs, margin, factor = [], 0, 1
    with torch.no_grad():
        for layer, module in zip(layers, modules, strict=True):
            y, y_shown = module(x), module(x_shown)
            out_margin = block_margin(layer, margin)
            if isinstance(layer, LayerSpec):
                plan = StagePlan(
                    fs0 * factor, layer.stride, layout.period * factor, layout.period,
                    mt.groups, layout.period,
                )  # fmt: skip
                span = PERIODS * plan.period_in
                others = {name: interior(y_shown[i], out_margin) for i, name in enumerate(DISPLAY)}
                m = measure_stage(
                    windows(x, margin, span),
                    windows(y, out_margin, span * layer.stride),
                    plan,
                    settings,
                    others,
                )
                runs.append(StageRun(len(runs), layer, module, plan.fs_in, m))
                factor *= layer.stride
            x, x_shown, margin = y, y_shown, out_margin
    period_out = layout.period * factor
    periods = windows(x, margin, PERIODS * period_out)
    shown = {name: periods[i] for i, name in enumerate(PERIODIC)}
    shown |= {name: interior(x_shown[i], margin) for i, name in enumerate(DISPLAY)}
    return runs, periods, period_out, shown


def display_length(layers: list) -> int:
    """Input samples of the figure-only probes: :data:`OUTPUT_SAMPLES` at the output plus the
    boundary margins (the old probe length)."""
    margin, factor = 0, 1
    for layer in layers:
        margin = block_margin(layer, margin)
        if isinstance(layer, LayerSpec):
            factor *= layer.stride
    return math.ceil((OUTPUT_SAMPLES + 2 * margin) / factor) + 16


def measure_standalone(
    spec: LayerSpec,
    module: torch.nn.Module,
    fs_in: float,
    seed: int,
    device: torch.device,
    settings: LineSettings,
) -> StageMeasurement:
    """Drive one upsampler alone with fresh probes at its own input rate."""
    layout = stack_layout(single_layer_stack(spec, fs_in * spec.stride), None, [])
    runs, *_ = run_stack([spec], [module], layout, fs_in, spec.channels, seed, device, settings)
    return runs[0].measurement


def stage_name(run: StageRun, count: int) -> str:
    return run.spec.type if count == 1 else f"{run.index + 1}:{run.spec.type}"


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
    notes: list[str] = []

    progress("building the stack")
    modules = [m.to(torch_device, DTYPE).eval() for m in build_stack(spec, seed)]
    layout = stack_layout(spec, probe_samples, notes)
    check_memory(stack_memory(spec, layout.n_samples), "lower --probe-samples or --channels")
    progress(f"probing {len(spec.upsamplers)} stage(s) with the periodic multitone")
    runs, output, period_out, shown = run_stack(
        spec.layers, modules, layout, fs_model_in, spec.channels, seed, torch_device, settings
    )

    stages: list[StageResult] = []
    upstream: list = []
    for run in runs:
        measurement = run.measurement
        name = stage_name(run, len(runs))
        progress(f"measuring {name}")
        assign_origins(
            measurement.lines, upstream, run.fs_in, run.spec.stride, name, measurement.bin_hz / 2
        )
        upstream = measurement.lines
        details = layer_details(run.spec, run.module)
        if len(spec.layers) > 1:
            alone = measure_standalone(
                run.spec, run.module, run.fs_in, seed, torch_device, settings
            )
            details["standalone"] = alone
            details["offset_source"] = upstream_offset_source(spec, run.index)
            # A stage's filtering and replicas are its own (adopt_standalone says why); the
            # chain's numbers stay in the details, its curves in the figure.
            details["chain"] = adopt_standalone(measurement, alone)
        stages.append(
            StageResult(
                run.index, name, run.spec.type, run.spec.stride, run.fs_in, measurement, details
            )
        )

    findings = [f for stage in stages for f in stage_findings(stage, thresholds)]
    findings += periodicity_findings(stages, notes)
    output_lines_ = stages[-1].measurement.lines
    if isinstance(spec.layers[-1], BlockSpec):  # blocks after the last upsampler
        bin_hz = fs_model_in / layout.period
        output_lines_ = output_lines(
            output, period_out, layout.period, bin_hz, settings,
            groups_for(spec.channels), layout.period,
        )  # fmt: skip
        match_origins(output_lines_, stages[-1].measurement.lines, "output", bin_hz / 2)
    if len(spec.layers) > 1:
        findings += chain_findings(stages, output_lines_, thresholds)
    return Report(
        subject={"kind": "layer", "name": spec.name, "spec": spec.describe()},
        sample_rate_hz=sample_rate,
        probe_samples=layout.n_samples,
        seed=seed,
        device=str(torch_device),
        thresholds=thresholds,
        stages=stages,
        findings=findings,
        notes=notes,
        output_lines=output_lines_ if len(spec.layers) > 1 else None,
        output_excerpts=(
            {name: excerpt(s, sample_rate) for name, s in shown.items()}
            if len(spec.layers) > 1
            else None
        ),
    )


def check_layer(
    spec: LayerSpec,
    sample_rate: float = 16000.0,
    *,
    seed: int = 0,
    device: str = "auto",
    probe_samples: int | None = None,
    thresholds: Thresholds | None = None,
) -> Report:
    """Check one upsampling layer, as ``upsampcheck layer`` does.

    Args:
        spec: the layer (:class:`LayerSpec`).
        sample_rate: the rate of the layer's **output** in Hz (1 Hz .. 10 MHz).
        seed: seeds the probes and the layer's initialisation (0 .. 2**64 - 1).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        probe_samples: samples per probe at the layer's input (16 .. 2**24); None: enough
            for the response points.
        thresholds: severities; None: the shipped defaults merged with pyproject.toml.

    Returns:
        A :class:`~upsampcheck.report.findings.Report`.
    """
    stack = single_layer_stack(spec, check_sample_rate(sample_rate))
    return check_stack(
        stack, seed=seed, device=device, probe_samples=probe_samples, thresholds=thresholds
    )
