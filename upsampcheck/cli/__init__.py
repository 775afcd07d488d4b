"""The command line: Typer only. Heavy imports (torch, matplotlib) happen inside commands, so
``upsampcheck --help`` stays fast; :func:`main` maps errors to exit codes.

One module per command (``layer``, ``model``, ``repair``, ``trend``, ``audio``), the options they share in
:mod:`.options`, the app in :mod:`.app`, the exit-code mapping in :mod:`.main`.
"""

from . import audio, layer, model, repair, trend  # noqa: F401  (each registers its command)
from .app import app
from .main import main, run

__all__ = ["app", "main", "run"]
