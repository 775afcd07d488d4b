"""``upsampcheck model``: probe a real model at its input, tap every upsampling stage in one
batched pass, measure each stage at its own rate, drive each replayable stage alone, and trace
the output's lines to the stages that made them.

Rates: the output runs at ``sample_rate``; a stage whose output is ``r`` times shorter than the
model's output runs at ``sample_rate / r``, and its input rate is that divided by the stage's
factor. Padding and cropping make ``r`` inexact (HDemucs: 44104 samples for 44100, 176 frames
for 172.3), so ``r`` is snapped to the product of the factors of a run of consecutive later
stages (or 1), else to an integer (:func:`nominal_ratio`; a loose snap is noted). The model's
own input rate is ``sample_rate`` over the output/input length ratio, snapped the same way.

What was found but not measured is an ``info`` finding of check ``discovery``: growth along a
non-time axis (HDemucs' frequency-axis ConvTranspose2d), a stage whose input is complex
(``istft``) or whose factor is fractional, and a model with no upsampling stage at all. A
model whose exported archive fixes the batch size (torch.export) runs one probe per pass.

The model's tone probe (``fs_in / 8`` of the model input) measures a stage's image rejection
only where it lies well inside the stage's input band (below ``fs_in / 4``); elsewhere (e.g.
after an encoder that downsamples) the stage's image rejection is the one measured with the
stage driven alone, and a note says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from .analysis import LineSettings, StageMeasurement, choose_nfft, measure_stage, probe_lines
from .attribution import assign_origins
from .check import OUTPUT_SAMPLES, check_sample_rate, resolve_device
from .config import Thresholds, load_thresholds
from .discover import Stage, discover, module_types, tap
from .errors import StageError, UsageError
from .loading import LoadedModel
from .report import Finding, Report, StageResult, chain_findings, stage_findings
from .signals import PROBES, make_probes, tone_frequency

EDGE_FRACTION = 8
"""A model's boundary reach is unknown: 1/8 of each tapped signal is dropped at either end."""
DISCOVERY_FRAMES = 256
ALONE_ELEMENTS = 2**19
"""A stage driven alone gets at most this many input values per probe (channels x frames)."""
RATIO_TOLERANCE = 0.05
"""Length ratios within 5 % of a product of stage factors are taken as that product."""
LOOSE_TOLERANCE = 0.25
"""... and within 25 % when nothing closer fits (noted in the report)."""


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
    """Leading input dims from the first Conv1d / ConvTranspose1d (its in_channels); in a
    TorchScript or exported model, from the weight of the first module written as one."""
    types = module_types(model)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            return (module.in_channels,)
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 3:
            continue
        if types.get(name) == "Conv1d":  # (out, in / groups, k): groups unknown, taken as 1
            return (weight.shape[1],)
        if types.get(name) == "ConvTranspose1d":  # (in, out / groups, k)
            return (weight.shape[0],)
    return None


def probe_batch(shape: tuple[int, ...], fs: float, opts: ModelOptions) -> torch.Tensor:
    """``(P, *shape)``: every probe along the last (time) axis, the leading dims as channels."""
    channels = math.prod(shape[:-1])
    probes = make_probes(
        shape[-1], fs, channels, seed=opts.seed, level=opts.level, silence_value=opts.silence_value
    )
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


def nominal_ratio(length: int, shorter: int, factors: list[float]) -> tuple[float, bool]:
    """``length / shorter`` as a rate ratio, and whether it snapped cleanly.

    Tried in turn: the nearest product of a run of consecutive ``factors`` (or 1) within
    :data:`RATIO_TOLERANCE`; an integer within 2 % and 0.1; the nearest product within
    :data:`LOOSE_TOLERANCE` (short inputs, where a crop of a few frames is a large fraction:
    WaveRNN's upsampler drops 4 of 64 frames); else the ratio itself. The last two are not
    clean: the caller notes them.
    """
    ratio = length / shorter
    products = {1.0}
    for start in range(len(factors)):
        product = 1.0
        for factor in factors[start:]:
            product *= factor
            products.add(product)
    best = min(products, key=lambda p: abs(math.log(ratio / p)))
    if abs(ratio / best - 1) <= RATIO_TOLERANCE:
        return best, True
    if abs(ratio - round(ratio)) <= min(0.02 * ratio, 0.1):
        return float(round(ratio)), True
    if abs(ratio / best - 1) <= LOOSE_TOLERANCE:
        return best, False
    return ratio, False


def integer_rate(stage: Stage) -> int | None:
    """The stage's upsampling factor as an integer: its factor when within 5 % of an integer
    >= 2 (a shape-growth stage's factor is its exact length ratio, which padding can make
    7.99 for 8), else None (a fractional factor such as 1.5 is not measured)."""
    rate = round(stage.factor)
    if rate >= 2 and abs(stage.factor / rate - 1) <= RATIO_TOLERANCE:
        return rate
    return None


def finite_or_finding(t: torch.Tensor, where: str, findings: list[Finding]) -> bool:
    """False (and a failing finding) when ``t`` holds NaN or Inf."""
    if torch.isfinite(t).all():
        return True
    bad = [name for i, name in enumerate(PROBES) if not torch.isfinite(t[i]).all()]
    findings.append(
        Finding(
            "numerics",
            "fail",
            where,
            f"non-finite values (NaN/Inf) in {where} for the {', '.join(bad)} probe(s)",
            "the model produces NaN or Inf for these inputs",
            "check the model's weights and input range",
        )
    )
    return False


def measure_alone(
    stage: Stage, x: torch.Tensor, fs_in: float, opts: ModelOptions, settings: LineSettings
) -> StageMeasurement | None:
    """Drive a replayable stage with fresh probes at its own input rate, as ``upsampcheck
    layer`` would (silence is zeros, whatever ``--silence-value`` says about the model input);
    the input keeps the tapped shape except batch and, where the op allows, a length that gives
    :data:`OUTPUT_SAMPLES` at the output (shorter for wide stages: at most
    :data:`ALONE_ELEMENTS` input values per probe, never shorter than the tapped input)."""
    rate = integer_rate(stage)
    if stage.replay is None or x.is_complex() or rate is None:
        return None
    opts = replace(opts, silence_value=0.0)
    shape = tuple(x.shape[1:])
    frames = min(math.ceil(OUTPUT_SAMPLES / rate), ALONE_ELEMENTS // math.prod(shape[:-1]))
    longer = (*shape[:-1], max(shape[-1], frames))
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
        margin = max(ys.shape[-1] // (2 * EDGE_FRACTION), 2 * rate)
        try:
            return measure_stage(
                xs,
                ys,
                PROBES,
                fs_in,
                rate,
                margin,
                tone_hz=tone_frequency(fs_in),
                settings=settings,
            )
        except ValueError:
            return None
    return None


def run_probes(
    model: nn.Module,
    signals: torch.Tensor,
    stages: list[Stage],
    method: str,
    batch: int | None,
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """:func:`~upsampcheck.discover.tap` on the whole probe batch, or, for a model exported with
    a fixed batch of ``batch`` examples, one pass per probe (each repeated ``batch`` times), the
    results stacked probe-major as if the batch had run at once."""
    if batch is None:
        return tap(model, signals, stages, method)
    outputs, taps = [], {}
    for row in signals:
        out, part = tap(model, row.expand(batch, *row.shape).contiguous(), stages, method)
        outputs.append(out)
        for name, pair in part.items():
            taps.setdefault(name, []).append(pair)
    joined = {
        name: (torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs]))
        for name, pairs in taps.items()
    }
    return torch.cat(outputs), joined


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
    findings: list[Finding] = []

    shape = opts.input_shape
    batch = None  # an exported program's fixed batch size
    if loaded.example_inputs:
        batch = loaded.example_inputs[0].shape[0]
        if shape is None:
            shape = tuple(loaded.example_inputs[0].shape[1:])
            notes.append(f"input shape {shape} from the archive's example input")
    inferred = shape is None
    if shape is None:
        leading = infer_channels(model)
        if leading is None:
            raise UsageError("cannot infer the input shape; pass --input-shape D1,...,T")
        shape = (*leading, DISCOVERY_FRAMES)
        notes.append(f"input shape inferred from the first conv: {leading[0]} channel(s)")
    explicit_length = not inferred

    progress("discovering stages")
    # Discovery needs the graph, not the length: try a 16x shorter input first (one cheap
    # pass), the full length when the model refuses it. A .pt2 keeps its exported shape.
    lengths = [shape[-1]]
    if batch is None and shape[-1] >= 16 * DISCOVERY_FRAMES:
        lengths.insert(0, shape[-1] // 16)
    for attempt, length in enumerate(lengths):
        probe_shape = (*shape[:-1], length)
        first = probe_batch(probe_shape, 1.0, opts)[:1].to(device)
        try:
            found = discover(model, first.expand(batch or 1, *probe_shape), opts.method)
            break
        except StageError as exc:
            if attempt + 1 < len(lengths):
                continue
            failure = exc
    else:
        exc = failure
        hint = (
            f"input shape {','.join(map(str, shape))} was inferred; pass --input-shape"
            if inferred
            else "check --input-shape / --method"
        )
        if loaded.example_inputs and shape != tuple(loaded.example_inputs[0].shape[1:]):
            example = ",".join(map(str, loaded.example_inputs[0].shape[1:]))
            hint += f"; the archive was exported for input shape {example}"
        raise StageError(f"{exc} ({hint})") from None
    for other in found.other_axis:
        findings.append(
            Finding(
                "discovery",
                "info",
                other.name,
                f"{other.kind} grows a non-time axis (e.g. frequency) x{other.factor:g}: "
                "not a time stage, not measured",
            )
        )
    stages = found.stages
    if opts.stage:
        chosen = [s for s in stages if opts.stage in s.name]
        if not chosen:
            names = ", ".join(s.name for s in stages) or "none"
            raise UsageError(f"--stage {opts.stage!r} matches no stage (stages: {names})")
        stages = chosen
    factors = [s.factor for s in found.stages]
    factor, clean = nominal_ratio(found.output_shape[-1], probe_shape[-1], factors)
    if not clean:
        notes.append(
            f"output/input length ratio {found.output_shape[-1] / probe_shape[-1]:.4g} taken as "
            f"{factor:.4g}: the input rate is sample rate / {factor:.4g}"
        )
    if not explicit_length and factor > 0:
        frames = max(shape[-1], math.ceil(max(OUTPUT_SAMPLES, 8 * factor * 16) / factor))
        shape = (*shape[:-1], frames)
    fs_model_in = sample_rate / factor
    tone_hz = tone_frequency(fs_model_in)

    progress(f"probing {len(stages)} stage(s) in one batched pass")
    signals = probe_batch(shape, fs_model_in, opts).to(device)
    try:
        output, taps = run_probes(model, signals, stages, opts.method, batch)
    except StageError as exc:
        raise StageError(f"{exc} (check --input-shape / --method)") from None
    results: list[StageResult] = []
    y_out = per_probe(output)
    if y_out is None:
        raise UsageError(f"model output of shape {tuple(output.shape)} has no probe-major batch")
    notes.append(f"analysed {found.output_index} of shape {tuple(y_out.shape[1:])} per probe")
    ok_output = finite_or_finding(y_out, "output", findings)
    out_len = y_out.shape[-1]
    grids: list[float] = []
    upstream: list = []
    position = {s.name: i for i, s in enumerate(found.stages)}

    def skip(stage: Stage, why: str) -> None:
        message = f"{stage.kind} x{stage.factor:g} found but not measured: {why}"
        findings.append(Finding("discovery", "info", stage.name, message))

    for stage in stages:
        progress(f"measuring {stage.name}")
        x, y = (per_probe(t) for t in taps[stage.name])
        rate = integer_rate(stage)
        if rate is None:
            skip(stage, "its factor is not an integer")
            continue
        if y is None:
            skip(stage, "its output does not keep the probes along the batch")
            continue
        if not finite_or_finding(y, stage.name, findings):
            continue
        later = [s.factor for s in found.stages[position[stage.name] + 1 :]]
        ratio, clean = nominal_ratio(out_len, y.shape[-1], later)
        fs_out = sample_rate / ratio
        if not clean:
            notes.append(
                f"{stage.name}: output/stage length ratio {out_len / y.shape[-1]:.4g} taken as "
                f"{ratio:.4g}, so its output rate is {fs_out:g} Hz"
            )
        fs_in = fs_out / rate
        if x is None or x.shape[-1] * rate < y.shape[-1] // 2:
            what = "complex" if taps[stage.name][0].is_complex() else "not a per-probe signal"
            skip(stage, f"its input is {what}, so the probes cannot be traced through it")
            continue
        margin = max(y.shape[-1] // EDGE_FRACTION, 2 * rate)
        in_band = tone_hz < fs_in / 4
        try:
            measurement = measure_stage(
                x,
                y,
                PROBES,
                fs_in,
                rate,
                margin,
                tone_hz=tone_hz if in_band else None,
                grid_hz=[*grids, fs_in],
                settings=settings,
                grid_factor=max(1, round(fs_out / min([*grids, fs_in]))),
            )
        except ValueError:
            skip(stage, "too few samples; lengthen --input-shape")
            continue
        grids.append(fs_in)
        name = stage.name
        assign_origins(measurement.lines, upstream, fs_in, rate, name, 2 * measurement.freqs_hz[1])
        upstream = measurement.lines
        details = stage_details(stage, rate)
        if opts.standalone:
            alone = measure_alone(stage, taps[stage.name][0], fs_in, opts, settings)
            if alone is not None:
                details["standalone"] = alone
                if not in_band:
                    measurement.image_rejection_db = alone.image_rejection_db
                    notes.append(
                        f"{name}: image rejection measured with the stage driven alone (the "
                        f"model's {tone_hz:g} Hz tone probe is not well inside its input band, "
                        f"0-{fs_in / 2:g} Hz)"
                    )
        results.append(
            StageResult(len(results), name, kind_of(stage), rate, fs_in, measurement, details)
        )

    output_lines = None
    if ok_output and results:
        progress("tracing output lines")
        low = min(r.fs_in_hz for r in results)
        edge = out_len // EDGE_FRACTION
        n_fft = choose_nfft(out_len - 2 * edge, round(sample_rate / low))
        try:
            _, output_lines = probe_lines(
                y_out, PROBES, sample_rate, edge, n_fft, [r.fs_in_hz for r in results], settings
            )
        except ValueError:
            notes.append("the output is too short to trace its lines; lengthen --input-shape")
        else:
            trace_output(output_lines, results, 2 * sample_rate / n_fft)
    for result in results:
        findings += stage_findings(result, thresholds)
    if results:
        findings += chain_findings(results, output_lines or [], thresholds)
    if not found.stages:
        message = "no upsampling stage found: nothing lengthens the time axis"
        notes.append(message)
        findings.append(Finding("discovery", "info", "model", message))
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
    details = {
        "op": stage.kind,
        "in_shape": list(stage.in_shape[1:]),
        "out_shape": list(stage.out_shape[1:]),
        "stride": rate,
    }
    weight = getattr(stage.module, "weight", None)  # also a TorchScript/exported module's
    if stage.kind.startswith("ConvTranspose1d") and isinstance(weight, torch.Tensor):
        from .layers import polyphase_sums

        details["length"] = weight.shape[-1]
        sums = polyphase_sums(weight.detach().double().cpu(), rate).mean(0)
        details["polyphase_sums"] = [round(v, 6) for v in sums.tolist()]
    return details


def kind_of(stage: Stage) -> str:
    """The report's kind: ``transposed`` for transposed convs (so causes and fixes match the
    layer command's), else the discovered kind."""
    transposed = stage.kind.startswith("ConvTranspose1d") or stage.kind == "conv_transpose1d"
    return "transposed" if transposed else stage.kind


def trace_output(lines: list, stages: list[StageResult], tol_hz: float) -> None:
    """Give each output line the origin of the same line at the latest stage that has it."""
    for line in lines:
        line.origin = "output"
        for stage in reversed(stages):
            match = [
                ln
                for ln in stage.measurement.lines
                if ln.probe == line.probe and abs(ln.freq_hz - line.freq_hz) <= tol_hz
            ]
            if match:
                line.origin = match[0].origin
                break
