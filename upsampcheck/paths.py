"""Paths a user gives: input files checked before anything is read, names shown safely.

Every file the tool reads (a checkpoint, a ``--config`` or stack spec, a baseline, an audio
file) goes through :func:`check_input_file` first: it must be a regular file that can be
opened, so a FIFO is never opened (a read would block forever), a directory or a device is
named as such, and a missing file says so, all as one-line :class:`~.errors.UsageError`\\ s.
:func:`shown` prints a path whose bytes are not valid UTF-8 with escapes instead of failing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import UsageError


def shown(path: os.PathLike | str) -> str:
    """``path`` as printable text: undecodable bytes (surrogate escapes) become ``\\xNN``."""
    text = os.fspath(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def describe_kind(mode: int) -> str:
    """What a non-regular file is, in words (for an error message)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_input_file(path: os.PathLike | str, what: str) -> Path:
    """Refuse anything but an existing, readable regular file, without reading it.

    ``what`` names the role in the message ("checkpoint", "--config", "baseline"). Symbolic
    links are followed; a dangling one is "no such file".
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UsageError(f"{what} {shown(path)}: no such file") from None
    except NotADirectoryError:
        raise UsageError(f"{what} {shown(path)}: a part of the path is not a folder") from None
    except OSError as exc:
        raise UsageError(f"{what} {shown(path)}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{what} {shown(path)}: {describe_kind(mode)}, not a file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{what} {shown(path)}: permission denied")
    return path


def check_writable_parent(path: os.PathLike | str, what: str) -> None:
    """The nearest existing folder above ``path`` must be a real folder the tool can create
    entries in (not a file, a dangling link, a read-only file system or a folder without
    write permission); a one-line :class:`~.errors.UsageError` otherwise."""
    path = Path(os.path.abspath(path))
    ancestor = path.parent
    while not ancestor.exists():
        if ancestor.is_symlink():
            raise UsageError(f"{what} {shown(path)}: {shown(ancestor)} is a dangling link")
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{what} {shown(path)}: {shown(ancestor)} is a file, not a folder")
    read_only = False
    try:
        read_only = bool(os.statvfs(ancestor).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        pass
    if read_only or not os.access(ancestor, os.W_OK | os.X_OK):
        reason = "read-only file system" if read_only else "permission denied"
        raise UsageError(f"{what} {shown(path)}: cannot write in {shown(ancestor)}: {reason}")
