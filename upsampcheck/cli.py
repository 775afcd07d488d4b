"""The command line: Typer only. Heavy imports (torch, matplotlib) happen inside commands, so
``upsampcheck --help`` stays fast; :func:`main` maps errors to exit codes (DESIGN.md §5)."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import UsageError

app = typer.Typer(
    name="upsampcheck",
    help=(
        "Diagnose upsampling artifacts (tonal lines, filtering roll-off, spectral replicas, DC "
        "offsets) in neural audio layers and models.\n\n"
        "Exit codes: 0 pass, 1 a failing finding, 2 bad input, 3 internal error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

LAYER_EXAMPLES = """
**Examples**

* Partial overlap, constant weights (tones at 4 and 8 kHz, fails):
  `upsampcheck layer --type transposed --length 5 --stride 4 --init ones --no-bias`

* Interpolation alone (droop, no tones): `upsampcheck layer --type nearest --stride 2 --length 0`

* ICNR subpixel, report on stdout:
  `upsampcheck layer --type subpixel --stride 2 --init icnr --format json`
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


class Check(str, Enum):
    tonal = "tonal"
    filtering = "filtering"
    replicas = "replicas"
    offset = "offset"


T = "Thresholds"
Out = Annotated[Path, typer.Option("--out", "-o", help="Report folder (replaced atomically).")]
Seed = Annotated[int, typer.Option(help="Seed for weights and noise probes.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Fmt = Annotated[
    Format, typer.Option("--format", help="text: table + verdict; json: report.json on stdout.")
]
Plots = Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG figures.")]
ProbeSamples = Annotated[
    Optional[int],
    typer.Option(help="Input samples per probe (default: enough for 32768 output samples)."),
]
TonalFail = Annotated[
    Optional[float],
    typer.Option(help="Fail on a tonal line above this (dB re signal).", rich_help_panel=T),
]
TonalWarn = Annotated[
    Optional[float], typer.Option(help="Warn on a tonal line above this.", rich_help_panel=T)
]
LineFloor = Annotated[
    Optional[float], typer.Option(help="Ignore lines below this.", rich_help_panel=T)
]
LineProm = Annotated[
    Optional[float],
    typer.Option(help="A line must stand this far above its floor.", rich_help_panel=T),
]
FiltWarn = Annotated[
    Optional[float],
    typer.Option(help="Warn when the response at 0.9 Nyquist is below this.", rich_help_panel=T),
]
RepWarn = Annotated[
    Optional[float],
    typer.Option(help="Warn when the first image is above this.", rich_help_panel=T),
]
OffWarn = Annotated[
    Optional[float],
    typer.Option(help="Warn when DC under silence is above this.", rich_help_panel=T),
]
FailOn = Annotated[
    Optional[list[Check]],
    typer.Option(help="Warnings of this check fail too (repeatable).", rich_help_panel=T),
]
ExitZero = Annotated[
    bool, typer.Option("--exit-zero", help="Exit 0 even when a finding fails.", rich_help_panel=T)
]


def threshold_flags(**flags: object) -> dict[str, object]:
    """Flag values keyed like the config keys (``tonal_fail_db`` -> ``tonal-fail-db``)."""
    out = {k.replace("_", "-"): v for k, v in flags.items()}
    if out.get("fail-on") is not None:
        out["fail-on"] = [c.value for c in out["fail-on"]] or None
    return out


def finish(report, out: Path, fmt: Format, renderer, plots: bool, exit_zero: bool) -> int:
    """Write the report folder, print the summary, return the exit code."""
    import json

    from .output import print_summary, write_report_folder

    write_report_folder(report, out, figures=plots, renderer=renderer)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        print_summary(report, out)
    return 0 if exit_zero else report.exit_code


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
            "--version", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Diagnose upsampling artifacts in neural audio layers and models."""


@app.command(epilog=LAYER_EXAMPLES)
def layer(
    type: Annotated[
        LayerType, typer.Option("--type", "-t", help="Upsampler kind.")
    ] = LayerType.transposed,
    stride: Annotated[int, typer.Option("--stride", "-s", help="Upsampling factor (>= 2).")] = 4,
    length: Annotated[
        Optional[int],
        typer.Option(
            "--length",
            "-l",
            help="Kernel length (0: interpolation alone). "
            "Default: 2*stride transposed, 3 subpixel, 9 otherwise.",
        ),
    ] = None,
    channels: Annotated[int, typer.Option("--channels", "-c", help="Channels in and out.")] = 1,
    bias: Annotated[bool, typer.Option("--bias/--no-bias", help="Give the layer a bias.")] = True,
    init: Annotated[
        Init, typer.Option(help="default (PyTorch's, seeded), ones, icnr (subpixel).")
    ] = Init.default,
    seed: Seed = 0,
    sample_rate: Annotated[
        float, typer.Option(help="Output sample rate in Hz; input rate = this / stride.")
    ] = 16000.0,
    device: Device = "auto",
    probe_samples: ProbeSamples = None,
    out: Out = Path("upsampcheck-report"),
    format: Fmt = Format.text,
    plots: Plots = True,
    tonal_fail_db: TonalFail = None,
    tonal_warn_db: TonalWarn = None,
    line_floor_db: LineFloor = None,
    line_prominence_db: LineProm = None,
    filtering_warn_db: FiltWarn = None,
    replicas_warn_db: RepWarn = None,
    offset_warn_db: OffWarn = None,
    fail_on: FailOn = None,
    exit_zero: ExitZero = False,
) -> int:
    """Check one upsampling layer built from flags: probes in, artifacts out."""
    from .render import FigureRenderer

    with FigureRenderer(background=plots) as renderer:  # starts importing matplotlib now
        from .config import load_thresholds
        from .layers import LayerSpec
        from .output import check_out_dir

        spec = LayerSpec(type.value, stride, length, channels, bias, init.value).validate()
        check_out_dir(out)
        flags = threshold_flags(
            tonal_fail_db=tonal_fail_db, tonal_warn_db=tonal_warn_db, line_floor_db=line_floor_db,
            line_prominence_db=line_prominence_db, filtering_warn_db=filtering_warn_db,
            replicas_warn_db=replicas_warn_db, offset_warn_db=offset_warn_db, fail_on=fail_on,
        )  # fmt: skip
        thresholds = load_thresholds(flags=flags)

        from .check import check_layer

        report = check_layer(
            spec, sample_rate, seed=seed, device=device, probe_samples=probe_samples,
            thresholds=thresholds,
        )  # fmt: skip
        return finish(report, out, format, renderer, plots, exit_zero)


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


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map every outcome to an exit code."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="upsampcheck")
    except UsageError as exc:
        sys.stderr.write(f"upsampcheck: error: {one_line(exc)}\n")
        return 2
    except (Exception, KeyboardInterrupt) as exc:
        kind = click_kind(exc)
        if kind == "exit":
            return exc.exit_code
        if kind == "usage":  # bad flags
            sys.stderr.write(f"upsampcheck: error: {one_line(exc.format_message())}\n")
            return 2
        if kind == "abort" or isinstance(exc, KeyboardInterrupt):
            sys.stderr.write("upsampcheck: aborted\n")
            return 130
        if os.environ.get("UPSAMPCHECK_DEBUG") == "1":
            raise
        sys.stderr.write(
            f"upsampcheck: internal error: {type(exc).__name__}: {one_line(exc)} "
            "(set UPSAMPCHECK_DEBUG=1 for a traceback)\n"
        )
        return 3
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
