"""``upsampcheck audio``: the upsampling grid in audio a model generated."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..phases import phase
from .app import Command, app
from .options import (
    AUDIO_DEFAULTS,
    ExitZero,
    Fmt,
    Format,
    Out,
    Plots,
    Quiet,
    T,
    Verbose,
    default_of,
    make_delivery,
    progress_reporter,
)


def shown_default(key: str, unit: str = " dB") -> str:
    """``\\[default: -50 dB]`` (escaped for rich markup) from the ``[audio]`` table."""
    return default_of(key, unit, AUDIO_DEFAULTS)


AUDIO_EXAMPLES = """[bold]Examples[/bold]

  A vocoder's output (lines, their grid, the quiet passages):
    [cyan]upsampcheck audio tts_sample.wav[/cyan]

  Several files, one report; the JSON on stdout:
    [cyan]upsampcheck audio out/*.flac --format json[/cyan]

  Fail only on lines clearly heard in the pauses:
    [cyan]upsampcheck audio gen.wav --line-fail-db -30 --quiet-fail-db 25[/cyan]

  Thresholds come from the \\[audio] table of --config, \\[tool.upsampcheck.audio] in
  pyproject.toml, or the flags below (defaults: configs/default.toml).
"""


class AudioCheck(str, Enum):
    tonal = "tonal"
    offset = "offset"


@app.command(cls=Command, epilog=AUDIO_EXAMPLES)
def audio(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="WAV, FLAC, MP3, Ogg Vorbis/Opus (any format libsndfile reads), mono or "
            "multichannel, 16/24-bit or float. Several files give one report.",
            show_default=False,
            metavar="FILE",
        ),
    ],
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config", help="A TOML file whose \\[audio] table overrides pyproject.toml."
        ),
    ] = None,
    out: Out = Path("upsampcheck-report"),
    format: Fmt = Format.text,
    plots: Plots = True,
    exit_zero: ExitZero = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    line_fail_db: Annotated[
        Optional[float],
        typer.Option(
            help="Fail on a locked grid line above this (dB re the file's RMS) "
            + shown_default("line-fail-db")
            + ".",
            rich_help_panel=T,
        ),
    ] = None,
    line_warn_db: Annotated[
        Optional[float],
        typer.Option(
            help=f"Warn on a locked grid line above this {shown_default('line-warn-db')}.",
            rich_help_panel=T,
        ),
    ] = None,
    quiet_fail_db: Annotated[
        Optional[float],
        typer.Option(
            help="Fail on a locked grid line this far above the quiet passages' floor "
            + shown_default("quiet-fail-db")
            + ".",
            rich_help_panel=T,
        ),
    ] = None,
    quiet_warn_db: Annotated[
        Optional[float],
        typer.Option(
            help=f"Warn on one this far above that floor {shown_default('quiet-warn-db')}.",
            rich_help_panel=T,
        ),
    ] = None,
    line_prominence_db: Annotated[
        Optional[float],
        typer.Option(
            help="A spectral peak (description) or a locked line in the quiet passages "
            f"must stand this far above its floor {shown_default('line-prominence-db')}.",
            rich_help_panel=T,
        ),
    ] = None,
    fail_on: Annotated[
        Optional[list[AudioCheck]],
        typer.Option(
            help="Warnings of this check fail too: tonal or offset (repeatable) "
            + shown_default("fail-on", "")
            + ".",
            rich_help_panel=T,
            metavar="CHECK",
        ),
    ] = None,
) -> int:
    """Find the lines locked to the sample clock and the upsampling grid fs/K in audio a
    model generated."""
    params = dict(locals())
    from ..outputs.render import FigureRenderer

    renderer = FigureRenderer(background=plots)
    no_baseline = {"baseline": None, "write_baseline": None, "tolerance_db": 1.0}
    with renderer, make_delivery({**params, **no_baseline}, renderer) as delivery:
        names = ("line_fail_db", "line_warn_db", "quiet_fail_db", "quiet_warn_db")
        flags = {k.replace("_", "-"): params[k] for k in (*names, "line_prominence_db")}
        flags["fail-on"] = [c.value for c in fail_on] or None if fail_on is not None else None
        from ..config import load_audio_thresholds, read_toml

        table = read_toml(config).get("audio", {}) if config is not None else {}
        thresholds = load_audio_thresholds(config=table, config_name=str(config), flags=flags)
        from ..subjects.audio import open_info

        for path in files:  # every file valid before any work
            open_info(path)
        delivery.prepare()
        with phase("import"):
            from ..audio.check import check_audio

        with progress_reporter() as step:
            with phase("measurement"):
                report = check_audio(files, thresholds, progress=step)
            step("writing the report")
            return delivery.deliver(report)
