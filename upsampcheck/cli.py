"""The command line: Typer only. Heavy imports (torch, matplotlib) happen inside commands, so
``upsampcheck --help`` stays fast; :func:`main` maps errors to exit codes (docs/method.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .errors import UsageError

if TYPE_CHECKING:
    from .outputs.folder import Delivery
    from .report.findings import Report

app = typer.Typer(
    name="upsampcheck",
    help=(
        "Diagnose upsampling artifacts (tonal lines, filtering roll-off, spectral replicas, DC "
        "offsets) in neural audio layers and models.\n\n"
        "Exit codes: 0 pass, 1 a failing finding, 2 bad input, 3 internal error."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

LAYER_EXAMPLES = """[bold]Examples[/bold]

  Partial overlap, constant weights (tones at 4 and 8 kHz, fails):
    [cyan]upsampcheck layer --type transposed --length 5 --stride 4 --init ones --no-bias[/cyan]

  Interpolation alone (droop, no tones):
    [cyan]upsampcheck layer --type nearest --stride 2 --length 0[/cyan]

  ICNR subpixel, the report on stdout:
    [cyan]upsampcheck layer --type subpixel --stride 2 --init icnr --format json[/cyan]

  The talk's Fig. 8 as a stack (see --list-configs):
    [cyan]upsampcheck layer --config fig8_transposed[/cyan]
"""


class LayerType(str, Enum):
    transposed = "transposed"
    subpixel = "subpixel"
    nearest = "nearest"
    linear = "linear"
    stretch = "stretch"


class Init(str, Enum):
    default = "default"
    ones = "ones"
    icnr = "icnr"


class Format(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"
    github = "github"


class Check(str, Enum):
    tonal = "tonal"
    filtering = "filtering"
    replicas = "replicas"
    offset = "offset"


T, CI = "Thresholds", "Output and CI"


def _threshold_defaults() -> dict[str, object]:
    """The shipped ``default.toml`` thresholds, for the help (tomllib only: help stays light)."""
    from .config import default_config_path, read_toml

    try:
        return read_toml(default_config_path())["thresholds"]
    except Exception:  # a broken install still gets its help
        return {}


DEFAULTS = _threshold_defaults()


def default_of(key: str, unit: str = " dB") -> str:
    """``\\[default: -40 dB]`` (escaped for rich markup) from configs/default.toml."""
    value = DEFAULTS.get(key)
    if isinstance(value, list):
        shown = ", ".join(map(str, value)) or "none"
    else:
        shown = "?" if value is None else f"{value:g}{unit}"
    return f"\\[default: {shown}]"


Out = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="Report folder: written whole, and it replaces only a folder upsampcheck wrote.",
        rich_help_panel=CI,
    ),
]
Seed = Annotated[
    Optional[int],
    typer.Option(help="Seed for weights and noise probes \\[default: 0, or the spec's seed]."),
]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Fmt = Annotated[
    Format,
    typer.Option(
        "--format",
        help="What goes to stdout: text (table), json (report.json), junit (XML), github (workflow commands).",
        rich_help_panel=CI,
    ),
]
Plots = Annotated[
    bool,
    typer.Option(
        "--plots/--no-plots",
        help="Write the PNG figures, report.html and audio/*.wav.",
        rich_help_panel=CI,
        metavar="",
    ),
]
ProbeSamples = Annotated[
    Optional[int],
    typer.Option(help="Input samples per probe \\[default: enough for 32768 output samples]."),
]
Baseline = Annotated[
    Optional[Path],
    typer.Option(
        help="Fail only on regressions against this baseline \\[default: none].",
        rich_help_panel=CI,
    ),
]
WriteBaseline = Annotated[
    Optional[Path],
    typer.Option(
        help="Store this run's measurements as a baseline \\[default: none].",
        rich_help_panel=CI,
    ),
]
Tolerance = Annotated[float, typer.Option(help="Baseline tolerance in dB.", rich_help_panel=CI)]
TonalFail = Annotated[
    Optional[float],
    typer.Option(
        help=f"Fail on a tonal line above this (dB re signal) {default_of('tonal-fail-db')}.",
        rich_help_panel=T,
    ),
]
TonalWarn = Annotated[
    Optional[float],
    typer.Option(
        help=f"Warn on a tonal line above this {default_of('tonal-warn-db')}.", rich_help_panel=T
    ),
]
LineFloor = Annotated[
    Optional[float],
    typer.Option(help=f"Ignore lines below this {default_of('line-floor-db')}.", rich_help_panel=T),
]
LineProm = Annotated[
    Optional[float],
    typer.Option(
        help=f"A line must stand this far above its floor {default_of('line-prominence-db')}.",
        rich_help_panel=T,
    ),
]
FiltWarn = Annotated[
    Optional[float],
    typer.Option(
        help="Warn when the response at 0.9 of the input Nyquist is below this "
        f"{default_of('filtering-warn-db')}.",
        rich_help_panel=T,
    ),
]
RepWarn = Annotated[
    Optional[float],
    typer.Option(
        help=f"Warn when the first image is above this {default_of('replicas-warn-db')}.",
        rich_help_panel=T,
    ),
]
OffWarn = Annotated[
    Optional[float],
    typer.Option(
        help=f"Warn when DC under silence is above this {default_of('offset-warn-db')}.",
        rich_help_panel=T,
    ),
]
FailOn = Annotated[
    Optional[list[Check]],
    typer.Option(
        help=f"Warnings of this check fail too (repeatable) {default_of('fail-on')}.",
        rich_help_panel=T,
    ),
]
ExitZero = Annotated[
    bool,
    typer.Option(
        "--exit-zero", help="Exit 0 even when a finding fails.", rich_help_panel=CI, metavar=""
    ),
]


THRESHOLD_PARAMS = (
    "tonal_fail_db",
    "tonal_warn_db",
    "line_floor_db",
    "line_prominence_db",
    "filtering_warn_db",
    "replicas_warn_db",
    "offset_warn_db",
    "fail_on",
)


def threshold_flags(params: dict[str, object]) -> dict[str, object]:
    """A command's threshold flags keyed like the config keys (``tonal-fail-db``)."""
    out = {name.replace("_", "-"): params[name] for name in THRESHOLD_PARAMS}
    if out["fail-on"] is not None:
        out["fail-on"] = [c.value for c in out["fail-on"]] or None
    return out


def make_delivery(params: dict[str, object], renderer: object) -> Delivery:
    """What happens to a command's report, from its output and CI options."""
    from .outputs.folder import Delivery

    return Delivery(
        params["out"],
        params["format"].value,
        params["plots"],
        params["baseline"],
        params["write_baseline"],
        params["tolerance_db"],
        params["exit_zero"],
        renderer,
    )


def show_version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"upsampcheck {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=show_version,
            is_eager=True,
            help="Print the version and exit.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Diagnose upsampling artifacts in neural audio layers and models."""


def list_configs() -> int:
    """Print the shipped stack specs with their descriptions."""
    from rich.console import Console
    from rich.table import Table

    from .config import read_toml, shipped_configs

    table = Table(title="shipped stack specs (upsampcheck layer --config NAME)")
    table.add_column("name")
    table.add_column("description", overflow="fold")
    for name, path in shipped_configs().items():
        table.add_row(name, str(read_toml(path).get("description", "")))
    Console().print(table)
    return 0


@app.command(epilog=LAYER_EXAMPLES)
def layer(
    type: Annotated[
        Optional[LayerType],
        typer.Option("--type", "-t", help="Upsampler kind \\[default: transposed]."),
    ] = None,
    stride: Annotated[
        Optional[int],
        typer.Option("--stride", "-s", help="Upsampling factor, >= 2 \\[default: 4]."),
    ] = None,
    length: Annotated[
        Optional[int],
        typer.Option(
            "--length",
            "-l",
            help="Kernel length (0: interpolation alone) \\[default: 2*stride transposed, 3 subpixel, 9 otherwise].",
        ),
    ] = None,
    channels: Annotated[
        Optional[int], typer.Option("--channels", "-c", help="Channels in and out \\[default: 1].")
    ] = None,
    bias: Annotated[
        Optional[bool],
        typer.Option(
            "--bias/--no-bias", help="Give the layer a bias \\[default: bias].", metavar=""
        ),
    ] = None,
    init: Annotated[
        Optional[Init],
        typer.Option(
            help="Weights: PyTorch's default (seeded), ones, icnr (subpixel) \\[default: default]."
        ),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config",
            help="A stack spec (TOML) instead of the layer flags: a path or a shipped name (see --list-configs) \\[default: none: the layer flags].",
        ),
    ] = None,
    list_configs_: Annotated[
        bool,
        typer.Option("--list-configs", help="List the shipped stack specs and exit.", metavar=""),
    ] = False,
    sample_rate: Annotated[
        Optional[float],
        typer.Option(
            help="Output sample rate in Hz; input rate = this / stride \\[default: 16000, or the spec's]."
        ),
    ] = None,
    seed: Seed = None,
    device: Device = "auto",
    probe_samples: ProbeSamples = None,
    out: Out = Path("upsampcheck-report"),
    format: Fmt = Format.text,
    plots: Plots = True,
    baseline: Baseline = None,
    write_baseline: WriteBaseline = None,
    tolerance_db: Tolerance = 1.0,
    exit_zero: ExitZero = False,
    tonal_fail_db: TonalFail = None,
    tonal_warn_db: TonalWarn = None,
    line_floor_db: LineFloor = None,
    line_prominence_db: LineProm = None,
    filtering_warn_db: FiltWarn = None,
    replicas_warn_db: RepWarn = None,
    offset_warn_db: OffWarn = None,
    fail_on: FailOn = None,
) -> int:
    """Check one upsampling layer built from flags, or a stack from a TOML spec."""
    params = dict(locals())
    if list_configs_:
        return list_configs()
    from .outputs.render import FigureRenderer

    renderer = FigureRenderer(background=plots)  # starts importing matplotlib now
    with renderer, make_delivery(params, renderer) as delivery:
        flags = threshold_flags(params)
        layer_flags = {
            "type": type,
            "stride": stride,
            "length": length,
            "channels": channels,
            "bias": bias,
            "init": init,
        }
        if config is not None:
            given = [f"--{k}" for k, v in layer_flags.items() if v is not None]
            if given:
                raise UsageError(f"--config describes the stack; drop {', '.join(given)}")
            from .config import find_config
            from .subjects.stack import load_stack

            stack = load_stack(find_config(config))
        else:
            from .subjects.layers import LayerSpec
            from .subjects.stack import single_layer_stack

            spec = LayerSpec(
                (type or LayerType.transposed).value,
                4 if stride is None else stride,
                length,
                1 if channels is None else channels,
                True if bias is None else bias,
                (init or Init.default).value,
            ).validate()
            stack = single_layer_stack(spec, 16000.0 if sample_rate is None else sample_rate)
        if sample_rate is not None:
            stack.sample_rate = sample_rate
        delivery.prepare()
        from .check import check_stack
        from .config import load_thresholds

        thresholds = load_thresholds(
            config=stack.thresholds, config_name=stack.source or "--config", flags=flags
        )
        with progress_reporter() as step:
            report = check_stack(
                stack,
                seed=seed,
                device=device,
                probe_samples=probe_samples,
                thresholds=thresholds,
                progress=step,
            )
            step("writing the report")
            return delivery.deliver(report)


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


@app.command(epilog=MODEL_EXAMPLES)
def model(
    checkpoints: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="Checkpoint(s): state dict, Lightning .ckpt, .safetensors, TorchScript, .pt2. "
            "Several (or a quoted glob) give one report each plus trend.json/trend.png.",
            show_default=False,
        ),
    ] = None,
    arch: Annotated[
        Optional[str],
        typer.Option(
            help="MODULE:CALLABLE that builds the model (importable from here or PYTHONPATH) "
            "\\[default: none: the checkpoint holds the model]."
        ),
    ] = None,
    arch_kwargs: Annotated[
        Optional[str],
        typer.Option(help="JSON object of keyword arguments for --arch \\[default: none]."),
    ] = None,
    weights: Annotated[
        Optional[str],
        typer.Option(
            help="Which weights of a checkpoint that holds several: a sub-dict key or a key "
            "prefix (e.g. ema, model_ema, gen_ema.)."
        ),
    ] = None,
    trust_checkpoint: Annotated[
        bool,
        typer.Option(
            "--trust-checkpoint",
            help="Allow formats that run code when loaded (TorchScript, .pt2, pickled modules).",
            metavar="",
        ),
    ] = False,
    input_shape: Annotated[
        Optional[str],
        typer.Option(
            help="One example's input shape, no batch, time last: D1,...,T \\[default: inferred]."
        ),
    ] = None,
    method: Annotated[
        str, typer.Option(help="Method to call instead of forward (e.g. decode).")
    ] = "forward",
    sample_rate: Annotated[
        Optional[float],
        typer.Option(
            help="Sample rate of the output audio in Hz [default: 16000, said in a note]."
        ),
    ] = None,
    silence_value: Annotated[
        float,
        typer.Option(help="What silence means at the input (a log-mel vocoder: its log floor)."),
    ] = 0.0,
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
    seed: Seed = None,
    device: Device = "auto",
    out: Out = Path("upsampcheck-report"),
    format: Fmt = Format.text,
    plots: Plots = True,
    baseline: Baseline = None,
    write_baseline: WriteBaseline = None,
    tolerance_db: Tolerance = 1.0,
    exit_zero: ExitZero = False,
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
    from .outputs.render import FigureRenderer

    renderer = FigureRenderer(background=plots)
    with renderer, make_delivery(params, renderer) as delivery:
        flags = threshold_flags(params)
        kwargs = parse_json_object(arch_kwargs) if arch_kwargs is not None else None
        from .report.trend import checkpoint_step, expand_checkpoints, order_checkpoints

        paths = expand_checkpoints(checkpoints or [])
        if not paths and arch is None:
            raise UsageError("give a CHECKPOINT, an --arch MODULE:CALLABLE, or both")
        if len(paths) > 1 and write_baseline is not None:
            raise UsageError("--write-baseline takes one checkpoint; give one at a time")
        from .config import load_thresholds, read_toml

        table = read_toml(config).get("thresholds", {}) if config is not None else {}
        thresholds = load_thresholds(config=table, config_name=str(config), flags=flags)
        delivery.prepare()
        from .bounds import check_seed, check_timeout
        from .model_check import ModelOptions, check_model, parse_shape

        opts = ModelOptions(
            sample_rate=16000.0 if sample_rate is None else sample_rate,
            input_shape=parse_shape(input_shape) if input_shape else None,
            method=method,
            silence_value=silence_value,
            stage=stage,
            seed=check_seed(0 if seed is None else seed),
            device=device,
        )
        check_timeout(timeout)
        if input_file is not None:
            from .subjects.real_input import load_input

            load_input(input_file)  # a bad --input is refused before any work
        from .subjects.loading import load_model
        from .subjects.watchdog import time_limit

        def run_one(path: Path | None, step: Callable[[str], None], number: int | None) -> Report:
            step(f"loading {path.name if path else arch}")
            loaded = load_model(path, arch, kwargs, trust_checkpoint, opts.seed, weights)
            subject = {
                "kind": "model",
                "name": path.name if path else arch,
                "checkpoint": str(path) if path else None,
                "step": number,
                "arch": arch,
                "format": loaded.source,
                "weights": "learned" if loaded.trained else "initialization",
                "method": method,
            }
            with time_limit(timeout, path.name if path else arch, loaded.module):
                report = check_model(loaded, opts, thresholds, subject, progress=step)
            if input_file is not None:
                step(f"driving the model with {input_file.name}")
                add_real_input(report, loaded.module, input_file, opts, config)
            if sample_rate is None:
                report.notes.append(
                    "no --sample-rate given: the output is taken to run at 16000 Hz, and every "
                    "frequency and rate in this report follows from that"
                )
            return report

        with progress_reporter() as step:
            if len(paths) <= 1:
                path = paths[0] if paths else None
                report = run_one(path, step, checkpoint_step(path) if path else None)
                step("writing the report")
                return delivery.deliver(report)
            entries = [
                {
                    "name": path.name,
                    "checkpoint": str(path),
                    "step": number,
                    "report": run_one(path, step, number),
                }
                for path, number in order_checkpoints(paths)
            ]
            step("writing the reports")
            return delivery.deliver_series(entries)


TREND_EXAMPLES = """[bold]Examples[/bold]

  One report per checkpoint, made anywhere (a CI matrix, a Slurm array), then one trend:
    [cyan]upsampcheck model ckpts/step=1000.ckpt --arch mymodels:Vocoder --out reports/step1000[/cyan]
    [cyan]upsampcheck trend reports/ --out trend[/cyan]

  Report folders named one by one, the trend as JSON on stdout:
    [cyan]upsampcheck trend run-a/ck1 run-a/ck2 run-b/ck3 --format json[/cyan]
"""


class TrendFormat(str, Enum):
    text = "text"
    json = "json"


@app.command(epilog=TREND_EXAMPLES)
def trend(
    reports: Annotated[
        list[Path],
        typer.Argument(
            help="Report folders (or their report.json), or folders holding report folders.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Trend folder (trend.json, trend.png).", rich_help_panel=CI
        ),
    ] = Path("upsampcheck-trend"),
    format: Annotated[
        TrendFormat, typer.Option("--format", help="text (table) or json.", rich_help_panel=CI)
    ] = TrendFormat.text,
    plots: Plots = True,
    exit_zero: ExitZero = False,
) -> int:
    """Merge reports made anywhere into one trend across training: the output's and each
    stage's loudest line per checkpoint, ordered by step; exit 1 when any report failed."""
    from .outputs.folder import Delivery, deliver_trend
    from .report.trend import trend_from_reports

    merged = trend_from_reports(reports)  # every report read before anything is written
    with Delivery(out, format.value, plots, exit_zero=exit_zero) as delivery:
        delivery.prepare()
        return deliver_trend(delivery, merged)


AUDIO_EXAMPLES = """[bold]Examples[/bold]

  A vocoder's output (lines, their grid, the quiet passages):
    [cyan]upsampcheck audio tts_sample.wav[/cyan]

  Several files, one report; the JSON on stdout:
    [cyan]upsampcheck audio out/*.flac --format json[/cyan]

  Fail only on lines clearly heard in the pauses:
    [cyan]upsampcheck audio gen.wav --line-fail-db -30 --quiet-fail-db 25[/cyan]

  Thresholds come from the [audio] table of --config, [tool.upsampcheck.audio] in
  pyproject.toml, or the flags below.
"""


class AudioCheck(str, Enum):
    tonal = "tonal"
    offset = "offset"


@app.command(epilog=AUDIO_EXAMPLES)
def audio(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="WAV/FLAC (or any format libsndfile reads), mono or multichannel, 16/24-bit "
            "or float. Several files give one report.",
            show_default=False,
        ),
    ],
    config: Annotated[
        Optional[Path],
        typer.Option("--config", help="A TOML file whose [audio] table overrides pyproject.toml."),
    ] = None,
    out: Out = Path("upsampcheck-report"),
    format: Fmt = Format.text,
    plots: Plots = True,
    exit_zero: ExitZero = False,
    line_fail_db: Annotated[
        Optional[float],
        typer.Option(
            help="Fail on a grid line above this (dB re the file's RMS).", rich_help_panel=T
        ),
    ] = None,
    line_warn_db: Annotated[
        Optional[float], typer.Option(help="Warn on a grid line above this.", rich_help_panel=T)
    ] = None,
    quiet_fail_db: Annotated[
        Optional[float],
        typer.Option(
            help="Fail on a grid line this far above the quiet passages' floor.", rich_help_panel=T
        ),
    ] = None,
    quiet_warn_db: Annotated[
        Optional[float],
        typer.Option(help="Warn on a grid line this far above that floor.", rich_help_panel=T),
    ] = None,
    line_prominence_db: LineProm = None,
    fail_on: Annotated[
        Optional[list[AudioCheck]],
        typer.Option(help="Warnings of this check fail too (repeatable).", rich_help_panel=T),
    ] = None,
) -> int:
    """Find stationary lines and the upsampling grid fs/K in audio a model generated."""
    params = dict(locals())
    from .outputs.render import FigureRenderer

    renderer = FigureRenderer(background=plots)
    no_baseline = {"baseline": None, "write_baseline": None, "tolerance_db": 1.0}
    with renderer, make_delivery({**params, **no_baseline}, renderer) as delivery:
        names = ("line_fail_db", "line_warn_db", "quiet_fail_db", "quiet_warn_db")
        flags = {k.replace("_", "-"): params[k] for k in (*names, "line_prominence_db")}
        flags["fail-on"] = [c.value for c in fail_on] or None if fail_on is not None else None
        from .config import load_audio_thresholds, read_toml

        table = read_toml(config).get("audio", {}) if config is not None else {}
        thresholds = load_audio_thresholds(config=table, config_name=str(config), flags=flags)
        from .subjects.audio import open_info

        for path in files:  # every file valid before any work
            open_info(path)
        delivery.prepare()
        from .audio_check import check_audio

        with progress_reporter() as step:
            report = check_audio(files, thresholds, progress=step)
            step("writing the report")
            return delivery.deliver(report)


def add_real_input(
    report: Report, module: object, path: Path, opts: object, config: Path | None
) -> None:
    """``model --input``: the output for a real input, its lines traced to the stages, in the
    report (``input`` in report.json, findings on the stages that made the lines)."""
    from .check import resolve_device
    from .config import load_audio_thresholds, read_toml
    from .report.audio import input_report
    from .subjects.real_input import analyse_input

    table = read_toml(config).get("audio", {}) if config is not None else {}
    audio_t = load_audio_thresholds(config=table, config_name=str(config))
    result = analyse_input(
        path, module, opts.method, resolve_device(opts.device), opts.sample_rate,
        report.stages, audio_t,
    )  # fmt: skip
    report.real_input, findings = input_report(result, audio_t)
    report.findings.extend(findings)
    report.notes.extend(result.file.notes)


def parse_json_object(text: str) -> dict:
    """``--arch-kwargs``: a JSON object, or a one-line usage error."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--arch-kwargs is not valid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise UsageError('--arch-kwargs must be a JSON object, e.g. \'{"sources": ["a"]}\'')
    return value


class progress_reporter:
    """A transient rich spinner on stderr naming the current step; silent off a terminal."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.progress.__enter__()
        self.task = self.progress.add_task("starting", total=None)
        return lambda text: self.progress.update(self.task, description=text)

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)


def one_line(text: str) -> str:
    """Collapse a message to one line."""
    return " ".join(str(text).split())


def click_kind(exc: BaseException) -> str | None:
    """ "exit", "usage" or "abort" for Click's control-flow exceptions (Typer may vendor its own
    copy of Click, so they are recognised by class name), else None."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Exit" in names and hasattr(exc, "exit_code"):
        return "exit"
    if "ClickException" in names:
        return "usage"
    if "Abort" in names:
        return "abort"
    return None


class Signalled(BaseException):
    """SIGINT or SIGTERM arrived. It unwinds like KeyboardInterrupt (staging folders and the
    figure process are cleaned up on the way) but is no KeyboardInterrupt, so nothing on the
    way (Typer turns that into a silent exit 130) swallows it; exit ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: object) -> None:
    raise Signalled(signum)


def say(text: str) -> None:
    """One line on stderr; path bytes that are not UTF-8 are shown escaped, never a crash."""
    line = f"upsampcheck: {one_line(text)}\n"
    line = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    sys.stderr.write(line)
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map every outcome to an exit code (0 pass, 1 a failing
    finding, 2 bad usage or input, 3 internal error, 130 SIGINT, 143 SIGTERM)."""
    import signal
    import threading

    watched = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = [signal.signal(s, _on_signal) for s in watched] if main_thread else []
    try:
        result = app(args=argv, standalone_mode=False, prog_name="upsampcheck")
    except UsageError as exc:
        say(f"error: {exc}")
        return 2
    except Signalled as exc:
        name = "SIGINT" if exc.signum == signal.SIGINT else "SIGTERM"
        say(f"{'interrupted' if name == 'SIGINT' else 'terminated'} ({name})")
        return 128 + exc.signum
    except (Exception, KeyboardInterrupt) as exc:
        kind = click_kind(exc)
        if kind == "exit":
            return exc.exit_code
        if kind == "usage":  # bad flags
            say(f"error: {exc.format_message().replace('Value error, ', '')}")
            return 2
        if kind == "abort" or isinstance(exc, KeyboardInterrupt):
            say("interrupted (SIGINT)")
            return 130
        if os.environ.get("UPSAMPCHECK_DEBUG") == "1":
            import traceback

            traceback.print_exc()
            return 3
        say(
            f"internal error: {type(exc).__name__}: {exc} (set UPSAMPCHECK_DEBUG=1 for a traceback)"
        )
        return 3
    finally:
        for sig, handler in zip(watched, previous, strict=False):
            signal.signal(sig, handler)
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
