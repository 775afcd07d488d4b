"""The Typer application and its root options (``--version``)."""

from __future__ import annotations

from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup


class _BareFlags:
    """Flags take no value: show no ``<bool>`` type beside them (Typer 0.29 renders one for
    the help and completion options it adds)."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201 (Click's signature)
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _ManyPaths(TyperArgument):
    """An argument taking several paths: its type column reads ``<path>...``, not Typer's
    ``<list[Path]>``."""

    def display_type_rich(self, ctx):  # noqa: ANN001, ANN201 (Typer's signature)
        return "<path>..."


class Command(_BareFlags, TyperCommand):
    """Every subcommand's class: ``@app.command(cls=Command)``. Arguments that take several
    paths show ``<path>...`` as their type."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument and param.nargs == -1:
                param.__class__ = _ManyPaths


class Group(_BareFlags, TyperGroup):
    """The root command's class."""


app = typer.Typer(
    cls=Group,
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
