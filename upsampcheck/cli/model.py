"""``upsampcheck model``: checkpoints and architectures, one or many, and a real input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import UsageError
from ..phases import phase
from .app import Command, app
from .options import (
    Arch,
    ArchKwargs,
    Baseline,
    Device,
    ExitZero,
    FailOn,
    FiltWarn,
    Fmt,
    Format,
    InputShape,
    LineFloor,
    LineProm,
    Method,
    ModelSeed,
    OffWarn,
    Out,
    Plots,
    Quiet,
    RepWarn,
    SampleRate,
    SilenceValue,
    Tolerance,
    TonalFail,
    TonalWarn,
    TrustCheckpoint,
    Verbose,
    Weights,
    WriteBaseline,
    make_delivery,
    parse_json_object,
    progress_reporter,
    threshold_flags,
)

if TYPE_CHECKING:
    from ..model.check import ModelOptions
    from ..report.findings import Report

MODEL_EXAMPLES = """[bold]Examples[/bold]

  A state dict into its architecture:
    [cyan]upsampcheck model ckpt.pt --arch mymodels:Vocoder --sample-rate 22050[/cyan]

  A fresh architecture, before training:
    [cyan]upsampcheck model --arch torchaudio.models:conv_tasnet_base --sample-rate 8000[/cyan]

  A log-mel vocoder, silence at its log floor:
    [cyan]upsampcheck model g.pt --arch hifigan:Generator --input-shape 80,200 --silence-value -11.5[/cyan]

  Every checkpoint of a run, with a trend across training steps:
    [cyan]upsampcheck model 'ckpts/*.ckpt' --arch mymodels:Vocoder --sample-rate 22050[/cyan]

  TorchScript, torch.export (.pt2) and pickled modules run code when loaded: add
  --trust-checkpoint only for files you trust.
"""


@app.command(cls=Command, epilog=MODEL_EXAMPLES)
def model(
    checkpoints: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="Checkpoint(s): state dict, Lightning .ckpt, .safetensors, TorchScript, .pt2. "
            "Several (or a quoted glob) give one report each plus trend.json/trend.png.",
            show_default=False,
            metavar="CHECKPOINT",
        ),
    ] = None,
    arch: Arch = None,
    arch_kwargs: ArchKwargs = None,
    weights: Weights = None,
    trust_checkpoint: TrustCheckpoint = False,
    input_shape: InputShape = None,
    short_probe: Annotated[
        bool,
        typer.Option(
            "--short-probe",
            help="Probe at --input-shape's length even where it is shorter than the full-"
            "resolution probe, down to 32 samples per period at the deepest stage: the same "
            "lines and offsets, coarser responses (a quick check of a large model).",
            metavar="",
        ),
    ] = False,
    method: Method = "forward",
    sample_rate: SampleRate = None,
    silence_value: SilenceValue = 0.0,
    stage: Annotated[
        Optional[str],
        typer.Option(help="Only measure stages whose name contains this \\[default: all]."),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            help="A TOML file whose \\[thresholds] table overrides pyproject.toml "
            "\\[default: none].",
        ),
    ] = None,
    input_file: Annotated[
        Optional[Path],
        typer.Option(
            "--input",
            help="Also drive the model with this real input (a WAV for waveform models; a .npy "
            "or weights-only .pt tensor of one example for mel/latent inputs) and trace the "
            "lines in its output to the stages.",
        ),
    ] = None,
    timeout: Annotated[
        Optional[float],
        typer.Option(
            help="Give up (exit 2, naming the stage it was in) when checking one checkpoint "
            "takes longer than this many seconds."
        ),
    ] = None,
    list_stages: Annotated[
        bool,
        typer.Option(
            "--list-stages",
            help="List the discovered stages (name, op, factor, rates, shapes) and exit: one "
            "discovery pass, nothing measured or written (--format json for JSON).",
            metavar="",
        ),
    ] = False,
    seed: ModelSeed = None,
    device: Device = "auto",
    out: Out = Path("upsampcheck-report"),
    format: Fmt = Format.text,
    plots: Plots = True,
    baseline: Baseline = None,
    write_baseline: WriteBaseline = None,
    tolerance_db: Tolerance = 1.0,
    exit_zero: ExitZero = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    tonal_fail_db: TonalFail = None,
    tonal_warn_db: TonalWarn = None,
    line_floor_db: LineFloor = None,
    line_prominence_db: LineProm = None,
    filtering_warn_db: FiltWarn = None,
    replicas_warn_db: RepWarn = None,
    offset_warn_db: OffWarn = None,
    fail_on: FailOn = None,
) -> int:
    """Check a model: find its upsampling stages, probe them, trace every line to its stage."""
    params = dict(locals())
    if list_stages:
        return _list_stages(params)
    from ..outputs.render import FigureRenderer

    renderer = FigureRenderer(background=plots)
    with renderer, make_delivery(params, renderer) as delivery:
        flags = threshold_flags(params)
        kwargs = parse_json_object(arch_kwargs) if arch_kwargs is not None else None
        from ..report.trend import checkpoint_step, expand_checkpoints, order_checkpoints

        paths = expand_checkpoints(checkpoints or [])
        if not paths and arch is None:
            raise UsageError("give a CHECKPOINT, an --arch MODULE:CALLABLE, or both")
        if len(paths) > 1 and write_baseline is not None:
            raise UsageError("--write-baseline takes one checkpoint; give one at a time")
        from ..config import load_thresholds, read_toml

        table = read_toml(config).get("thresholds", {}) if config is not None else {}
        thresholds = load_thresholds(config=table, config_name=str(config), flags=flags)
        delivery.prepare()
        with phase("import"):
            from ..model.check import check_model

        opts = model_options(params)
        real_input = None
        if input_file is not None:  # a bad --input or [audio] table is refused before any work
            from ..config import load_audio_thresholds
            from ..subjects.real_input import load_input

            audio_table = read_toml(config).get("audio", {}) if config is not None else {}
            audio_t = load_audio_thresholds(config=audio_table, config_name=str(config))
            real_input = (input_file, load_input(input_file)[0], audio_t)
        from ..paths import shown
        from ..subjects.loading import load_model
        from ..subjects.watchdog import time_limit

        def vet(path: Path, step: Callable[[str], None]) -> None:
            """Load ``path`` exactly as the analysis will, under ``--timeout``, and drop it:
            every refusal (format, archive directory, size, weights-only, fit, tensor types)
            comes before the first checkpoint is analysed."""
            step(f"checking {shown(path.name)}")
            with time_limit(timeout, shown(path.name)):
                load_model(path, arch, kwargs, trust_checkpoint, opts.seed, weights)

        def run_one(
            path: Path | None, step: Callable[[str], None], number: int | None, find_step: bool
        ) -> Report:
            """Load and check one checkpoint (or the bare --arch) under one --timeout; with
            ``find_step``, read its training step once it has passed the loading checks (the
            step is read with torch.load, which must not see a file before they do)."""
            name = shown(path.name) if path else arch
            step(f"loading {name}")
            with time_limit(timeout, name) as watch:  # one limit: loading, then the check
                with phase("load"):
                    loaded = load_model(path, arch, kwargs, trust_checkpoint, opts.seed, weights)
                watch.running(loaded.module)
                if find_step and path is not None:
                    number = checkpoint_step(path)
                subject = {
                    "kind": "model",
                    "name": name,
                    "checkpoint": shown(path) if path else None,
                    "step": number,
                    "arch": arch,
                    "format": loaded.source,
                    "weights": "learned" if loaded.trained else "initialization",
                    "method": method,
                }
                with phase("measurement"):
                    report = check_model(loaded, opts, thresholds, subject, progress=step)
            if real_input is not None:
                step(f"driving the model with {shown(input_file.name)}")
                with phase("measurement"):
                    add_real_input(report, loaded.module, *real_input, opts)
            if sample_rate is None:
                report.notes.append(
                    "no --sample-rate given: the output is taken to run at 16000 Hz, and every "
                    "frequency and rate in this report follows from that"
                )
            return report

        with progress_reporter() as step:
            if len(paths) <= 1:
                path = paths[0] if paths else None
                report = run_one(path, step, None, find_step=True)
                step("writing the report")
                return delivery.deliver(report)
            for path in paths:  # every checkpoint is refused or accepted before any work,
                vet(path, step)  # and before order_checkpoints reads their steps with torch.load
            ordered = order_checkpoints(paths)
            entries = [
                {
                    "name": shown(path.name),
                    "checkpoint": shown(path),
                    "step": number,
                    "report": run_one(path, step, number, find_step=False),
                }
                for path, number in ordered
            ]
            step("writing the reports")
            return delivery.deliver_series(entries)


def model_options(params: dict) -> ModelOptions:
    """The command's flags as :class:`~upsampcheck.model.check.ModelOptions`, checked before
    any work: the shape parsed, the seed and ``--timeout`` bounded, the device present and able
    to compute, a given shape's probe within memory (exit 2 in one line otherwise)."""
    from ..bounds import check_memory, check_seed, check_timeout
    from ..check import resolve_device
    from ..model.check import ModelOptions
    from ..model.discovery import input_memory, parse_shape

    sample_rate, input_shape, seed = params["sample_rate"], params["input_shape"], params["seed"]
    opts = ModelOptions(
        sample_rate=16000.0 if sample_rate is None else sample_rate,
        input_shape=parse_shape(input_shape) if input_shape else None,
        method=params["method"],
        silence_value=params["silence_value"],
        stage=params["stage"],
        seed=check_seed(0 if seed is None else seed),
        device=params["device"],
        short_probe=bool(params.get("short_probe")),
    )
    if opts.short_probe and opts.input_shape is None:
        raise UsageError("--short-probe keeps the length of --input-shape: give one")
    check_timeout(params["timeout"])
    resolve_device(opts.device)  # a device that is not here, or that cannot compute: exit 2 now
    if opts.input_shape is not None:
        check_memory(input_memory(opts.input_shape), "shorten --input-shape's time axis")
    return opts


def _list_stages(params: dict) -> int:
    """``--list-stages``: the stages of one checkpoint (or the bare ``--arch``), nothing written."""
    from ..report.trend import expand_checkpoints
    from .stage_list import print_stage_list, refuse_with_list_stages

    paths = expand_checkpoints(params["checkpoints"] or [])
    if not paths and params["arch"] is None:
        raise UsageError("give a CHECKPOINT, an --arch MODULE:CALLABLE, or both")
    refuse_with_list_stages(paths, params["write_baseline"], params["input_file"])
    kwargs = params["arch_kwargs"]
    opts = model_options(params)
    return print_stage_list(
        paths[0] if paths else None, params["arch"],
        parse_json_object(kwargs) if kwargs is not None else None,
        params["trust_checkpoint"], params["weights"], opts,
        params["format"] == Format.json, params["timeout"],
    )  # fmt: skip


def add_real_input(
    report: Report, module: object, path: Path, example: object, thresholds: object, opts: object
) -> None:
    """``model --input``: the output for the real input ``example`` (read from ``path``), its
    lines traced to the stages, in the report (``input`` in report.json, findings on the
    stages that made the lines)."""
    from ..check import resolve_device
    from ..report.audio import input_report
    from ..subjects.real_input import analyse_input

    result = analyse_input(
        path, example, module, opts.method, resolve_device(opts.device), opts.sample_rate,
        report.stages, thresholds,
    )  # fmt: skip
    report.real_input, findings = input_report(result, thresholds)
    report.findings.extend(findings)
    report.notes.extend(result.file.notes)
