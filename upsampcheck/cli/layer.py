"""``upsampcheck layer``: one layer from flags, or a stack from a TOML spec."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..phases import phase
from .app import Command, app
from .options import (
    Baseline,
    Device,
    ExitZero,
    FailOn,
    FiltWarn,
    Fmt,
    Format,
    Init,
    LayerType,
    LineFloor,
    LineProm,
    OffWarn,
    Out,
    Plots,
    ProbeSamples,
    Quiet,
    RepWarn,
    Seed,
    Tolerance,
    TonalFail,
    TonalWarn,
    Verbose,
    WriteBaseline,
    make_delivery,
    progress_reporter,
    threshold_flags,
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


def list_configs() -> int:
    """Print the shipped stack specs with their descriptions."""
    from rich.console import Console
    from rich.table import Table

    from ..config import read_toml, shipped_configs

    table = Table(title="shipped stack specs (upsampcheck layer --config NAME)")
    table.add_column("name")
    table.add_column("description", overflow="fold")
    for name, path in shipped_configs().items():
        table.add_row(name, str(read_toml(path).get("description", "")))
    Console().print(table)
    return 0


@app.command(cls=Command, epilog=LAYER_EXAMPLES)
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
    """Check one upsampling layer built from flags, or a stack from a TOML spec."""
    params = dict(locals())
    if list_configs_:
        return list_configs()
    from ..outputs.render import FigureRenderer

    renderer = FigureRenderer(background=plots)  # starts importing matplotlib now
    with renderer, make_delivery(params, renderer) as delivery:
        flags = threshold_flags(params)
        with phase("import"):
            from ..check import resolve_device

        resolve_device(device)  # a device that is not here, or that cannot compute: exit 2 now
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
            from ..config import find_config
            from ..subjects.stack import load_stack

            stack = load_stack(find_config(config))
        else:
            from ..subjects.layers import LayerSpec
            from ..subjects.stack import single_layer_stack

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
        from ..check import check_stack
        from ..config import load_thresholds

        thresholds = load_thresholds(
            config=stack.thresholds, config_name=stack.source or "--config", flags=flags
        )
        with progress_reporter() as step, phase("measurement"):
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
