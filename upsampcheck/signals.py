"""Signals: when a run may be stopped, and what it exits with then.

SIGINT, SIGTERM and SIGHUP stop a run by raising :class:`Signalled` in the main thread: it
unwinds like ``KeyboardInterrupt`` (staging folders and figure workers are cleaned up on the
way) and the command line exits ``128 + signum`` (130, 143, 129). Two phases are different:

- :func:`deferred` holds those signals back (in the Python handler, whichever thread the OS
  picked) around the few steps that must not be cut in half: creating the lock, and swapping
  the finished report in for the earlier one. A signal that arrives then takes effect when
  the step is over.
- once :func:`committed` has been called the report is in place; a signal after that no longer
  turns a complete run into 143: it is noted (:func:`late_signal`) and the run exits with its
  verdict's code.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

WATCHED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
NAMES = {getattr(signal, n, None): n for n in ("SIGINT", "SIGTERM", "SIGHUP")}


class Signalled(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived: exit ``128 + signum``. No ``KeyboardInterrupt``, so
    nothing on the way (Typer turns that into a silent exit 130) swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_state: dict = {"committed": False, "late": None, "deferring": 0, "pending": None}


def _on_signal(signum: int, frame: object) -> None:
    if _state["committed"]:
        _state["late"] = signum
    elif _state["deferring"]:
        _state["pending"] = _state["pending"] or signum
    else:
        raise Signalled(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Install the handlers for one run (main thread only) and restore the earlier ones."""
    _state.update(committed=False, late=None, deferring=0, pending=None)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = [signal.signal(s, _on_signal) for s in WATCHED]
    try:
        yield
    finally:
        for sig, handler in zip(WATCHED, previous, strict=True):
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back for the block: a signal that arrives meanwhile is
    raised when it ends (or only noted, when the block committed the report). Python runs
    signal handlers in the main thread whichever thread the OS picked, so this holds however
    many threads torch started. SIGKILL cannot be held: the next run cleans up after it."""
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
        pending = _state["pending"]
        if not _state["deferring"] and pending is not None:
            _state["pending"] = None
            if _state["committed"]:
                _state["late"] = pending
            else:
                raise Signalled(pending)


def committed() -> None:
    """The report is in place: from now on a signal is noted, not raised."""
    _state["committed"] = True


def late_signal() -> str | None:
    """The name of a signal that arrived after :func:`committed`, if any."""
    signum = _state["late"]
    return None if signum is None else NAMES.get(signum, str(signum))
