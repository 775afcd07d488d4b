"""``upsampcheck model``: probe a real model at its input, tap every upsampling stage in one
batched pass, measure each stage at its own rate, drive each replayable stage alone, and trace
the output's lines to the stages that made them.

Rates: the output runs at ``sample_rate``; a stage whose output is ``r`` times shorter than the
model's output runs at ``sample_rate / r`` (``r`` snapped to an integer within 2 %), and its
input rate is that divided by the stage's factor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .analysis import LineSettings, StageMeasurement, choose_nfft, measure_stage, probe_lines
from .attribution import assign_origins
from .check import OUTPUT_SAMPLES, check_sample_rate, resolve_device
from .config import Thresholds, load_thresholds
from .discover import Stage, discover, tap
from .errors import StageError, UsageError
from .loading import LoadedModel
from .report import Finding, Report, StageResult, chain_findings, stage_findings
from .signals import PROBES, make_probes, tone_frequency

EDGE_FRACTION = 8
"""A model's boundary reach is unknown: 1/8 of each tapped signal is dropped at either end."""
DISCOVERY_FRAMES = 256


@dataclass
class ModelOptions:
    """What ``upsampcheck model`` needs besides the loaded model."""

    sample_rate: float = 16000.0
    input_shape: tuple[int, ...] | None = None
    method: str = "forward"
    silence_value: float = 0.0
    level: float = 0.1
    stage: str | None = None
    seed: int = 0
    device: str = "auto"
    standalone: bool = True


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,16000"`` -> ``(1, 16000)``; every dimension a positive integer."""
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected integers like 1,16000") from None
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {text!r}: every dimension must be >= 1")
    return shape


def infer_channels(model: nn.Module) -> tuple[int, ...] | None:
    """Leading input dims from the first Conv1d / ConvTranspose1d (its in_channels)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            return (module.in_channels,)
    return None


def probe_batch(shape: tuple[int, ...], fs: float, opts: ModelOptions) -> torch.Tensor:
    """``(P, *shape)``: every probe along the last (time) axis, the leading dims as channels."""
    channels = math.prod(shape[:-1])
    probes = make_probes(shape[-1], fs, channels, seed=opts.seed, level=opts.level,
                         silence_value=opts.silence_value)  # fmt: skip
    signals = probes.signals
    if opts.silence_value != 0.0:  # noise, DC and sweeps ride on the silence value
        rows = [i for i, name in enumerate(PROBES) if name != "silence"]
        signals[rows] += opts.silence_value
    return signals.reshape(len(PROBES), *shape)


def per_probe(t: torch.Tensor, probes: int = len(PROBES)) -> torch.Tensor | None:
    """``(P*k, ..., T) -> (P, k*..., T)`` when the batch is probe-major, else None."""
    if t.dim() < 2 or t.shape[0] % probes or t.is_complex() or not t.is_floating_point():
        return None
    return t.reshape(probes, -1, t.shape[-1])


def snapped_ratio(longer: int, shorter: int) -> float:
    ratio = longer / shorter
    return float(round(ratio)) if abs(ratio - round(ratio)) <= 0.02 * ratio else ratio


def finite_or_finding(t: torch.Tensor, where: str, findings: list[Finding]) -> bool:
    """False (and a failing finding) when ``t`` holds NaN or Inf."""
    if torch.isfinite(t).all():
        return True
    bad = [name for i, name in enumerate(PROBES) if not torch.isfinite(t[i]).all()]
    findings.append(Finding(
        "numerics", "fail", where,
        f"non-finite values (NaN/Inf) in {where} for the {', '.join(bad)} probe(s)",
        "the model produces NaN or Inf for these inputs", "check the model's weights and input range",
    ))  # fmt: skip
    return False


def measure_alone(stage: Stage, x: torch.Tensor, fs_in: float, opts: ModelOptions,
                  settings: LineSettings) -> StageMeasurement | None:  # fmt: skip
    """Drive a replayable stage with fresh probes at its own input rate, as ``upsampcheck
    layer`` would; the input keeps the tapped shape except batch and, where the op allows,
    a length that gives :data:`OUTPUT_SAMPLES` at the output."""
    if stage.replay is None or x.is_complex() or int(stage.factor) != stage.factor:
        return None
    shape = tuple(x.shape[1:])
    longer = (*shape[:-1], max(shape[-1], math.ceil(OUTPUT_SAMPLES / stage.factor)))
    for candidate in (longer, shape):
        signals = probe_batch(candidate, fs_in, opts).to(x.device, x.dtype)
        try:
            with torch.no_grad():
                y = stage.replay(signals)
        except Exception:
            continue
        xs, ys = per_probe(signals), per_probe(y)
        if xs is None or ys is None or not torch.isfinite(ys).all():
            return None
        margin = max(ys.shape[-1] // (2 * EDGE_FRACTION), 2 * int(stage.factor))
        try:
            return measure_stage(xs, ys, PROBES, fs_in, int(stage.factor), margin,
                                 tone_hz=tone_frequency(fs_in), settings=settings)  # fmt: skip
        except ValueError:
            return None
    return None


def check_model(
    loaded: LoadedModel,
    opts: ModelOptions,
    thresholds: Thresholds | None = None,
    subject: dict | None = None,
    progress: Callable[[str], None] = lambda step: None,
) -> Report:
    """Check a loaded model; ``opts.sample_rate`` is the rate of its **output** audio."""
    sample_rate = check_sample_rate(opts.sample_rate)
    thresholds = thresholds or load_thresholds()
    settings = LineSettings(thresholds.line_floor_db, thresholds.line_prominence_db)
    device = resolve_device(opts.device)
    model = loaded.module.to(device)
    notes = list(loaded.notes)

    shape = opts.input_shape
    if shape is None and loaded.example_inputs:
        shape = tuple(loaded.example_inputs[0].shape[1:])
        notes.append(f"input shape {shape} from the archive's example input")
    if shape is None:
        leading = infer_channels(model)
        if leading is None:
            raise UsageError("cannot infer the input shape; pass --input-shape D1,...,T")
        shape = (*leading, DISCOVERY_FRAMES)
        notes.append(f"input shape inferred from the first conv: {leading[0]} channel(s)")
    explicit_length = opts.input_shape is not None or bool(loaded.example_inputs)

    progress("discovering stages")
    first = probe_batch(shape, 1.0, opts)[:1].to(device)
    found = discover(model, first, opts.method)
    for other in found.other_axis:
        notes.append(f"{other.name} ({other.kind}) grows a non-time axis x{other.factor:g}: "
                     "not a time stage")  # fmt: skip
    stages = found.stages
    if opts.stage:
        chosen = [s for s in stages if opts.stage in s.name]
        if not chosen:
            names = ", ".join(s.name for s in stages) or "none"
            raise UsageError(f"--stage {opts.stage!r} matches no stage (stages: {names})")
        stages = chosen
    out_len = found.output_shape[-1]
    factor = snapped_ratio(out_len, shape[-1])
    if not explicit_length and factor > 0:
        frames = max(shape[-1], math.ceil(max(OUTPUT_SAMPLES, 8 * factor * 16) / factor))
        shape = (*shape[:-1], frames)
    fs_model_in = sample_rate / factor
    notes.append(f"analysed {found.output_index} of shape {found.output_shape[1:]} per example")

    progress(f"probing {len(stages)} stage(s) in one batched pass")
    signals = probe_batch(shape, fs_model_in, opts).to(device)
    try:
        output, taps = tap(model, signals, stages, opts.method)
    except StageError as exc:
        raise StageError(f"{exc} (check --input-shape / --method)") from None
    findings: list[Finding] = []
    results: list[StageResult] = []
    y_out = per_probe(output)
    if y_out is None:
        raise UsageError(f"model output of shape {tuple(output.shape)} has no probe-major batch")
    ok_output = finite_or_finding(y_out, "output", findings)
    out_len = y_out.shape[-1]
    grids: list[float] = []
    upstream: list = []
    for index, stage in enumerate(stages):
        progress(f"measuring {stage.name}")
        x, y = (per_probe(t) for t in taps[stage.name])
        if y is None or not finite_or_finding(y, stage.name, findings):
            notes.append(f"{stage.name}: output not measurable per probe; skipped")
            continue
        fs_out = sample_rate / snapped_ratio(out_len, y.shape[-1])
        rate = stage.factor if int(stage.factor) == stage.factor else round(stage.length_ratio)
        fs_in = fs_out / rate
        grids.append(fs_in)
        margin = max(y.shape[-1] // EDGE_FRACTION, 2 * int(rate))
        if x is None or x.shape[-1] * rate < y.shape[-1] // 2:
            notes.append(f"{stage.name}: input not a per-probe signal; only its output is measured")
            x = None
        if x is None:
            continue
        measurement = measure_stage(
            x, y, PROBES, fs_in, int(rate), margin, tone_hz=tone_frequency(fs_model_in),
            grid_hz=list(grids), settings=settings, grid_factor=max(1, round(fs_out / min(grids))),
        )  # fmt: skip
        name = stage.name
        assign_origins(measurement.lines, upstream, fs_in, rate, name, 2 * measurement.freqs_hz[1])
        upstream = measurement.lines
        details = stage_details(stage, int(rate))
        if opts.standalone:
            alone = measure_alone(stage, taps[stage.name][0], fs_in, opts, settings)
            if alone is not None:
                details["standalone"] = alone
        results.append(StageResult(index, name, kind_of(stage), rate, fs_in, measurement, details))

    output_lines = None
    if ok_output and results:
        progress("tracing output lines")
        low = min(r.fs_in_hz for r in results)
        n_fft = choose_nfft(out_len - 2 * (out_len // EDGE_FRACTION), round(sample_rate / low))
        _, output_lines = probe_lines(y_out, PROBES, sample_rate, out_len // EDGE_FRACTION, n_fft,
                                      [r.fs_in_hz for r in results], settings)  # fmt: skip
        trace_output(output_lines, results, 2 * sample_rate / n_fft)
    for result in results:
        findings += stage_findings(result, thresholds)
    if results:
        findings += chain_findings(results, output_lines or [], thresholds)
    if not found.stages:
        notes.append("no upsampling stage found: nothing lengthens the time axis")
    return Report(
        subject=subject or {"kind": "model"},
        sample_rate_hz=sample_rate,
        probe_samples=shape[-1],
        seed=opts.seed,
        device=str(device),
        thresholds=thresholds,
        stages=results,
        findings=findings,
        notes=notes,
        output_lines=output_lines,
    )


def stage_details(stage: Stage, rate: int) -> dict:
    """What the report says about a discovered stage; a transposed conv's kernel length and
    polyphase sums feed the cause text (partial overlap vs. weights)."""
    details = {"op": stage.kind, "in_shape": list(stage.in_shape[1:]),
               "out_shape": list(stage.out_shape[1:]), "stride": rate}  # fmt: skip
    module = stage.module
    if isinstance(module, nn.ConvTranspose1d):
        from .layers import polyphase_sums

        details["length"] = module.kernel_size[0]
        sums = polyphase_sums(module.weight.detach().double().cpu(), rate).mean(0)
        details["polyphase_sums"] = [round(v, 6) for v in sums.tolist()]
    return details


def kind_of(stage: Stage) -> str:
    """The report's kind: ``transposed`` for transposed convs (so causes and fixes match the
    layer command's), else the discovered kind."""
    return "transposed" if stage.kind.startswith("ConvTranspose1d") else stage.kind


def trace_output(lines: list, stages: list[StageResult], tol_hz: float) -> None:
    """Give each output line the origin of the same line at the latest stage that has it."""
    for line in lines:
        line.origin = "output"
        for stage in reversed(stages):
            match = [
                ln for ln in stage.measurement.lines
                if ln.probe == line.probe and abs(ln.freq_hz - line.freq_hz) <= tol_hz
            ]  # fmt: skip
            if match:
                line.origin = match[0].origin
                break
