"""Draw the figures in a second process that imports matplotlib while the first imports torch.

Importing matplotlib and drawing take about as long as the analysis itself; on a machine with
two cores, a child forked at start-up (before torch is imported, so no threads are copied)
imports matplotlib in parallel and waits for the payload. Where ``fork`` is unavailable, or
torch is already loaded (as under pytest), the figures are drawn in-process instead.

The child never outlives its parent: on Linux it asks the kernel for SIGKILL when the parent
dies (``PR_SET_PDEATHSIG``, so even a SIGKILLed parent leaves no process behind), and anywhere
it exits when its pipe closes. It ignores Ctrl-C (the parent decides) and points its standard
streams at ``/dev/null``, so it never holds the caller's stdout or stderr open.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1


def _detach(parent: int) -> None:
    """In the child: die with the parent, leave Ctrl-C to it, let go of its terminal streams."""
    import os
    import signal

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _serve(conn: Any, parent: int) -> None:
    """Child: import the plotting code, then draw each payload sent until ``None`` arrives."""
    _detach(parent)
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
        data, folder, part = job
        try:
            if plotting is None:
                raise RuntimeError(failure)
            conn.send(("ok", draw(plotting, data, Path(folder), part)))
        except OSError as exc:  # a full disk: the parent reports it as an environment fault
            conn.send(("oserror", (exc.errno, exc.strerror or str(exc))))
        except BaseException as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def draw(plotting: Any, data: dict[str, Any], folder: Path, part: str = "all") -> list[str]:
    """Write ``data``'s figures (``part``: see :func:`~.plotting.write_figures`): an audio
    report's with :mod:`.plotting_audio` (all of them), any other's with ``plotting`` (the
    module already imported)."""
    if data.get("kind") == "audio":
        from .plotting_audio import write_figures

        return write_figures(data, folder) if part != "stages" else []
    return plotting.write_figures(data, folder, part)


class FigureRenderer:
    """``render(data, folder)`` draws a report's figures, in a pre-forked child when it can."""

    def __init__(self, background: bool = True) -> None:
        self._conn = self._process = None
        usable = "fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules
        if background and usable:
            context = multiprocessing.get_context("fork")
            self._conn, child = context.Pipe()
            self._process = context.Process(target=_serve, args=(child, os.getpid()), daemon=True)
            self._process.start()
            child.close()

    def render(self, data: dict[str, Any], folder: Path) -> list[str]:
        """Draw every figure of ``data`` into ``folder``; returns the file names. With a child
        and more than one stage to draw, the two cores share the work: the child draws the
        summary while this process draws the stages' spectrograms."""
        if self._conn is None:
            from . import plotting

            return draw(plotting, data, folder)
        split = data.get("kind") != "audio" and len(data.get("stages", [])) > 1
        self._conn.send((data, str(folder), "summary" if split else "all"))
        if split:  # on an error here, closing the renderer (now) stops the child
            from . import plotting

            mine = draw(plotting, data, folder, "stages")
            return [*mine, *self._receive()]
        return self._receive()

    def _receive(self) -> list[str]:
        """The child's answer to the job sent: its file names, or its failure raised."""
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise RuntimeError("the figure process died while drawing") from None
        if status == "oserror":
            raise OSError(*value)
        if status != "ok":
            raise RuntimeError(f"drawing figures failed: {value}")
        return value

    def close(self, now: bool = False) -> None:
        """Stop the child (if any; ``now``: at once, as on an error or a signal); safe to call
        twice."""
        if self._conn is not None:
            if now:
                self._process.kill()
            else:
                try:
                    self._conn.send(None)
                except OSError:
                    pass
            self._conn.close()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            self._conn = self._process = None

    @property
    def pid(self) -> int | None:
        """The figure process's PID while it runs (None: figures are drawn in-process)."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> FigureRenderer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(now=exc_type is not None)
