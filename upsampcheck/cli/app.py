"""The Typer application and its root options (``--version``)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="upsampcheck",
    help=(
        "Diagnose upsampling artifacts (tonal lines, filtering roll-off, spectral replicas, DC "
        "offsets) in neural audio layers and models.\n\n"
        "Exit codes: 0 pass, 1 a failing finding, 2 bad input, 3 internal error, "
        "130 interrupted (SIGINT), 143 terminated (SIGTERM), 129 hung up (SIGHUP)."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def show_version(value: bool) -> None:
    if value:
        from .. import __version__

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
