"""Draw the figures in a second process that imports matplotlib while the first imports torch.

Importing matplotlib and drawing take about as long as the analysis itself; on a machine with
two cores, a child forked at start-up (before torch is imported, so no threads are copied)
imports matplotlib in parallel and waits for the payload. Where ``fork`` is unavailable, or
torch is already loaded (as under pytest), the figures are drawn in-process instead.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path
from typing import Any


def _serve(conn: Any) -> None:
    """Child: import the plotting code, then draw each payload sent until ``None`` arrives."""
    try:
        from . import plotting
    except BaseException as exc:  # reported when the parent asks for figures
        plotting, failure = None, f"{type(exc).__name__}: {exc}"
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        data, folder = job
        try:
            if plotting is None:
                raise RuntimeError(failure)
            conn.send(("ok", draw(plotting, data, Path(folder))))
        except BaseException as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def draw(plotting: Any, data: dict[str, Any], folder: Path) -> list[str]:
    """Write ``data``'s figures: an audio report's with :mod:`.plotting_audio`, any other's
    with ``plotting`` (the module already imported)."""
    if data.get("kind") == "audio":
        from .plotting_audio import write_figures

        return write_figures(data, folder)
    return plotting.write_figures(data, folder)


class FigureRenderer:
    """``render(data, folder)`` draws a report's figures, in a pre-forked child when it can."""

    def __init__(self, background: bool = True) -> None:
        self._conn = self._process = None
        usable = "fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules
        if background and usable:
            context = multiprocessing.get_context("fork")
            self._conn, child = context.Pipe()
            self._process = context.Process(target=_serve, args=(child,), daemon=True)
            self._process.start()
            child.close()

    def render(self, data: dict[str, Any], folder: Path) -> list[str]:
        """Draw every figure of ``data`` into ``folder``; returns the file names."""
        if self._conn is None:
            from . import plotting

            return draw(plotting, data, folder)
        self._conn.send((data, str(folder)))
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise RuntimeError("the figure process died while drawing") from None
        if status != "ok":
            raise RuntimeError(f"drawing figures failed: {value}")
        return value

    def close(self) -> None:
        """Stop the child (if any); safe to call twice."""
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._conn.close()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.terminate()
            self._conn = self._process = None

    def __enter__(self) -> FigureRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
