"""Draw the figures in two worker processes that import matplotlib while the main one imports
torch.

Importing matplotlib and drawing take about as long as the analysis itself. A child forked at
start-up (before torch is imported, so no threads are copied) imports matplotlib in parallel,
then forks a second worker that shares those modules; when the report is ready, the main
process hands the figures out one job at a time (the summary, then each stage's
spectrograms) to whichever worker is free, so both cores draw and the main process never
imports matplotlib. Where ``fork`` is unavailable, or torch is already loaded (as under
pytest), the figures are drawn in-process instead.

The workers never outlive the run: on Linux each asks the kernel for SIGKILL when its parent
dies (``PR_SET_PDEATHSIG``: the first dies with the main process, the second with the first,
so even a SIGKILLed run leaves no process behind), and anywhere they exit when their pipe
closes. They ignore Ctrl-C (the main process decides) and point their standard streams at
``/dev/null``, so they never hold the caller's stdout or stderr open.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
from collections import deque
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from .names import figure_jobs

PR_SET_PDEATHSIG = 1
WORKERS = 2
QUEUED = 2
"""Jobs each worker holds at once (one drawing, the next waiting in its pipe)."""


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


def _serve_workers(conns: list[Any], ends: list[Any], parent: int) -> None:
    """First worker: import the plotting code, fork the second worker, then each serves its
    own pipe (``conns``; ``ends``: the main process's ends, closed here) until it closes."""
    _detach(parent)
    for end in ends:
        end.close()
    try:
        from . import plotting
    except BaseException as exc:  # reported when the main process asks for figures
        plotting, failure = None, f"{type(exc).__name__}: {exc}"
    else:
        failure = ""
    first = os.getpid()
    second = os.fork() if len(conns) > 1 else -1
    if second == 0:  # the second worker: dies with the first, which dies with the main one
        try:
            _detach(first)
            conns[0].close()
            _serve(conns[1], plotting, failure)
        finally:
            os._exit(0)
    for conn in conns[1:]:
        conn.close()
    _serve(conns[0], plotting, failure)
    if second > 0:
        os.waitpid(second, 0)


def _serve(conn: Any, plotting: Any, failure: str) -> None:
    """A worker: keep the last payload sent, draw each job sent, until ``None`` or EOF."""
    data = folder = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        if message[0] == "data":
            _, data, folder = message
            continue
        try:
            if plotting is None:
                raise RuntimeError(failure)
            conn.send(("ok", draw(plotting, data, Path(folder), message[1])))
        except OSError as exc:  # a full disk: the main process reports it as an environment fault
            conn.send(("oserror", (exc.errno, exc.strerror or str(exc))))
        except BaseException as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def jobs_of(data: dict[str, Any]) -> list[str | int]:
    """The drawing jobs of a payload: an audio report's figures are one job, a stage report's
    are :func:`~.names.figure_jobs`."""
    return ["all"] if data.get("kind") == "audio" else figure_jobs(data)


def draw(plotting: Any, data: dict[str, Any], folder: Path, job: str | int = "all") -> list[str]:
    """Write one job's figures (:func:`jobs_of`) into ``folder``: an audio report's with
    :mod:`.plotting_audio` (all of them), any other's with ``plotting`` (the module already
    imported)."""
    if data.get("kind") == "audio":
        from .plotting_audio import write_figures

        return write_figures(data, folder)
    return plotting.write_figures(data, folder, job)


class FigureRenderer:
    """``render(data, folder)`` draws a report's figures, in pre-forked workers when it can."""

    def __init__(self, background: bool = True) -> None:
        self._conns: list[Any] = []
        self._process = None
        self._waiting: deque = deque()  # (index, job) not handed out yet
        self._busy: dict[Any, deque] = {}  # worker -> indices of the jobs it holds
        self._done: dict[int, list[str]] = {}  # job index -> file names written
        usable = "fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules
        if background and usable:
            context = multiprocessing.get_context("fork")
            pipes = [context.Pipe() for _ in range(WORKERS)]
            mine, theirs = [p[0] for p in pipes], [p[1] for p in pipes]
            self._process = context.Process(
                target=_serve_workers, args=(theirs, mine, os.getpid()), daemon=True
            )
            self._process.start()
            for conn in theirs:
                conn.close()
            self._conns = mine

    def render(self, data: dict[str, Any], folder: Path) -> list[str]:
        """Draw every figure of ``data`` into ``folder``; returns the file names, in job order."""
        self.start(data, folder)
        return self.finish()

    def start(self, data: dict[str, Any], folder: Path) -> None:
        """Hand out the first jobs of drawing ``data``'s figures into ``folder`` and return at
        once, so the caller can write its other files meanwhile; :meth:`finish` waits for
        the rest. Without workers, the figures are drawn here, now."""
        self._done = {}
        if not self._conns:
            from . import plotting

            self._done[0] = draw(plotting, data, folder)
            return
        self._waiting = deque(enumerate(jobs_of(data)))
        self._busy = {conn: deque() for conn in self._conns}
        if self._waiting:  # pickled once for both workers (BigVGAN's: 77 stages' spectra)
            payload = pickle.dumps(("data", data, str(folder)), pickle.HIGHEST_PROTOCOL)
            for conn in self._conns:
                conn.send_bytes(payload)
            for _ in range(QUEUED):  # a job in hand and one queued: no worker waits on us
                for conn in self._conns:
                    self._give(conn)

    def finish(self) -> list[str]:
        """Wait for the figures :meth:`start` handed out, giving each worker the next job as
        it answers; returns the file names in job order. On an error here, closing the
        renderer (now) stops the workers."""
        while any(self._busy.values()):
            for conn in wait([c for c, jobs in self._busy.items() if jobs]):
                self._done[self._busy[conn].popleft()] = self._receive(conn)
                self._give(conn)
        return [name for index in sorted(self._done) for name in self._done[index]]

    def _give(self, conn: Any) -> None:
        if self._waiting:
            index, job = self._waiting.popleft()
            self._busy[conn].append(index)
            conn.send(("job", job))

    @staticmethod
    def _receive(conn: Any) -> list[str]:
        """A worker's answer to the job sent: its file names, or its failure raised."""
        try:
            status, value = conn.recv()
        except EOFError:
            raise RuntimeError("the figure process died while drawing") from None
        if status == "oserror":
            raise OSError(*value)
        if status != "ok":
            raise RuntimeError(f"drawing figures failed: {value}")
        return value

    def close(self, now: bool = False) -> None:
        """Stop the workers (if any; ``now``: at once, as on an error or a signal; the second
        worker dies with the first); safe to call twice."""
        if self._process is not None:
            if now:
                self._process.kill()
            else:
                for conn in self._conns:
                    try:
                        conn.send(None)
                    except OSError:
                        pass
            for conn in self._conns:
                conn.close()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=5)
            self._conns, self._process = [], None

    @property
    def pid(self) -> int | None:
        """The first figure worker's PID while it runs (None: figures are drawn in-process)."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> FigureRenderer:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(now=exc_type is not None)
