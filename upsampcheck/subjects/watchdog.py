"""``--timeout``: bound a model check whose forward pass never returns, or a checkpoint whose
loading does not end.

A ``SIGALRM`` timer raises :class:`ModelTimeout` in the main thread when the time is up; the
handler reads the interrupted call stack for the innermost module of the model that was
running, so the one-line message names it. ``ModelTimeout`` is no ``Exception``: nothing in the
model or in the discovery hooks can swallow it on the way out. Python code (a loop, a sleep) is
interrupted at once; a single native op that never returns cannot be, and is bounded only by
the caller's own timeout. Where there is no ``SIGALRM`` (Windows) or off the main thread the
limit is not enforced.

One limit covers loading a checkpoint and checking it: :func:`time_limit` yields a
:class:`Watch` whose :meth:`Watch.running` names the model once it is loaded; until then the
message says the checkpoint was still loading.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ..errors import UsageError


class ModelTimeout(BaseException):
    """The check ran past ``--timeout``."""


def running_module(frame: FrameType | None, names: dict[int, str]) -> str | None:
    """The innermost module of ``names`` (``id(module) -> name``) whose code is on the stack."""
    while frame is not None:
        owner = frame.f_locals.get("self")
        if owner is not None and id(owner) in names:
            return f"'{names[id(owner)] or 'model'}' ({type(owner).__name__})"
        frame = frame.f_back
    return None


class Watch:
    """What the limited body is doing, for the message: loading until a model is named."""

    def __init__(self) -> None:
        self.names: dict[int, str] | None = None

    def running(self, model: Any) -> None:
        """From now on the body runs ``model`` (an ``nn.Module``): name its stages."""
        self.names = {id(m): n for n, m in model.named_modules()}

    def place(self, frame: FrameType | None) -> str:
        if self.names is None:
            return "; the checkpoint was still loading"
        where = running_module(frame, self.names)
        return f"; the model was running {where}" if where else ""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str, model: Any = None) -> Iterator[Watch]:
    """Raise a one-line :class:`UsageError` when the body runs past ``seconds`` (None: no
    limit); ``what`` names the subject, ``model`` (an ``nn.Module``) gives the stage names,
    or the yielded :class:`Watch` gets it once the body has loaded it."""
    watch = Watch()
    if model is not None:
        watch.running(model)
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not seconds or not usable:
        yield watch
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise ModelTimeout(f"no result within --timeout {seconds:g} s{watch.place(frame)}")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield watch
    except ModelTimeout as exc:
        raise UsageError(f"{what}: {exc}") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
