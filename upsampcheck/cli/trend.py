"""``upsampcheck trend``: reports made anywhere, merged into one trend across training."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .app import Command, app
from .options import (
    CI,
    ExitZero,
)

TREND_EXAMPLES = """[bold]Examples[/bold]

  One report per checkpoint, made anywhere (a CI matrix, a Slurm array), then one trend:
    [cyan]upsampcheck model ckpts/step=1000.ckpt --arch mymodels:Vocoder --out reports/step1000[/cyan]
    [cyan]upsampcheck trend reports/ --out trend[/cyan]

  Report folders named one by one, the trend as JSON on stdout:
    [cyan]upsampcheck trend run-a/ck1 run-a/ck2 run-b/ck3 --format json[/cyan]
"""


TrendPlots = Annotated[
    bool,
    typer.Option(
        "--plots/--no-plots",
        help="Also draw trend.png beside trend.json.",
        rich_help_panel=CI,
        metavar="",
    ),
]


class TrendFormat(str, Enum):
    text = "text"
    json = "json"


@app.command(cls=Command, epilog=TREND_EXAMPLES)
def trend(
    reports: Annotated[
        list[Path],
        typer.Argument(
            help="Report folders (or their report.json), or folders holding report folders.",
            show_default=False,
            metavar="REPORT",
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
    plots: TrendPlots = True,
    exit_zero: ExitZero = False,
) -> int:
    """Merge reports made anywhere into one trend across training: the output's and each
    stage's loudest line per checkpoint, ordered by step; exit 1 when any report failed."""
    from ..outputs.folder import Delivery, deliver_trend
    from ..report.trend import trend_from_reports

    # --out checked against the inputs, then every report read, before anything is written
    merged = trend_from_reports(reports, out)
    with Delivery(out, format.value, plots, exit_zero=exit_zero) as delivery:
        delivery.prepare()
        return deliver_trend(delivery, merged)
