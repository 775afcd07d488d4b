"""Standard streams that cannot change a verdict.

A CI log reader that exits early (``upsampcheck … | head -1``), a closed descriptor, or a full
device (``>/dev/full``) must not turn a finished run's verdict into another exit code or a
traceback. The convention is git's and ruff's: a broken pipe on stdout ends the output quietly;
the exit code is the verdict's. Any other write error on stdout is said once on stderr, and an
error on stderr is dropped (there is nowhere left to say it).

:func:`ensure_descriptors` runs first of all: a process started with descriptor 0, 1 or 2
closed gets ``/dev/null`` there, so the first file the tool opens (a lock, a report) can never
land on descriptor 1 and receive the terminal summary.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from typing import Any, TextIO


def ensure_descriptors() -> None:
    """Open ``/dev/null`` on any of descriptors 0, 1, 2 that is closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with_null = os.open(os.devnull, os.O_RDWR)
            if with_null != fd:
                os.dup2(with_null, fd)
                os.close(with_null)
    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):
        if getattr(sys, name) is None:  # Python started with the descriptor closed
            mode = "r" if fd == 0 else "w"
            setattr(sys, name, io.TextIOWrapper(open(fd, mode + "b", closefd=False), "utf-8"))


class GuardedStream(io.TextIOBase):
    """A text stream that never raises on write or flush; it remembers the first error.

    ``broken`` is True after a broken pipe (or a closed stream), ``error`` holds any other
    ``OSError`` text (``No space left on device``). Everything else is passed through.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False
        self.error: str | None = None

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, BrokenPipeError) or (
            isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.EBADF)
        ):
            self.broken = True
        elif isinstance(exc, OSError):
            self.error = self.error or (exc.strerror or str(exc))
        else:  # ValueError: I/O operation on closed file
            self.broken = True

    def write(self, text: str) -> int:
        if self.broken or self.error:
            return len(text)
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as exc:
            self._failed(exc)
            return len(text)

    def flush(self) -> None:
        if self.broken or self.error:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as exc:
            self._failed(exc)

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8") or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def abandon(self) -> None:
        """Drop what is still buffered below (after a broken pipe), so that the interpreter's
        last flush cannot raise."""
        if not (self.broken or self.error):
            return
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            pass
