"""The report folder contract: written completely or not at all, never over a user's files.

``--out`` is checked before any analysis runs (:meth:`OutFolder.check`), locked for the run
(:meth:`OutFolder.lock`: a second run on the same folder is refused), filled in a staging
folder next to it and swapped in (:meth:`OutFolder.staged`).

Ownership is claimed by a marker (:mod:`.marker`): every report folder holds ``.upsampcheck``
listing each file the tool wrote with its size and SHA-256. A claim is checked, never trusted:
an existing folder is replaced only when every listed file is there, unchanged, reached through
real folders, and nothing else is; an empty folder may be used too. Anything else is refused
(exit 2, nothing touched), and so are the working folder, the home folder, ``/`` and any
folder above them, whatever they hold. A symbolic link as ``--out`` is refused (never
followed).

The swap renames ``--out`` to ``.NAME.upsampcheck-old-PID``, the staging folder to ``--out``,
and deletes the old folder's claimed files, with SIGINT/SIGTERM/SIGHUP held back throughout.
Everything beside ``--out`` is named ``.NAME.upsampcheck-…``: a run that was killed (SIGKILL)
leaves at most a staging folder or the old report there, and the next run on the same
``--out`` (holding its lock, so no live run owns them) removes them, restoring the old report
when the kill came between the two renames.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .. import signals
from ..errors import UsageError
from ..paths import check_writable_parent, shown
from .marker import MARKER, Foreign, claim, remove_claimed, write_marker

__all__ = ["MARKER", "OutFolder", "remove_claimed", "write_marker"]

OUT_NAME_BYTES = 200
"""The longest ``--out`` name: the folders beside it add about 40 bytes to a 255-byte limit."""


def protected_folders() -> list[Path]:
    """Folders no report may replace, nor any folder above them."""
    found = [Path("/")]
    for candidate in (Path.cwd, Path.home):
        with contextlib.suppress(OSError, RuntimeError):
            found.append(candidate().resolve())
    return found


def raise_write_error(exc: OSError, where: Path) -> None:
    """An environment fault while writing, as a one-line usage error."""
    reason = "no space left on device" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    raise UsageError(
        f"cannot write the report in {shown(where)}: {reason or exc.strerror or exc}"
    ) from None


def try_lock(fd: int) -> bool:
    """Take an exclusive, non-blocking lock on the open file ``fd`` (``flock`` on POSIX,
    ``msvcrt.locking`` on Windows); False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class OutFolder:
    """One run's ``--out``: check, lock, stage, swap in."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out).expanduser()
        self.parent = Path(os.path.abspath(self.out)).parent
        self._created: list[Path] = []
        self._lock_fd: int | None = None
        self._lock_path: Path | None = None

    # -- before any work ---------------------------------------------------------------
    def check(self) -> OutFolder:
        """Refuse an ``--out`` the run must not write, before any analysis (exit 2)."""
        out, name = self.out, shown(self.out)
        if self.out.name in ("", ".", ".."):
            raise UsageError(f"--out {name}: name a new folder for the report, not '.', '..', '/'")
        if len(os.fsencode(self.out.name)) > OUT_NAME_BYTES:
            raise UsageError(
                f"--out: the folder's name is {len(os.fsencode(self.out.name))} bytes long; "
                f"give one of at most {OUT_NAME_BYTES}"
            )
        if out.is_symlink():
            raise UsageError(
                f"--out {name}: is a symbolic link; give a real folder (links are not followed)"
            )
        resolved = Path(os.path.abspath(out)).resolve()
        for folder in protected_folders():
            if resolved == folder or folder.is_relative_to(resolved):
                raise UsageError(
                    f"--out {name}: refusing to replace {shown(resolved)}, which is (or holds) "
                    "the working folder, the home folder or '/'; give a new folder for the report"
                )
        if os.path.lexists(out) and not out.is_dir():
            raise UsageError(f"--out {name}: exists and is not a folder")
        if out.is_dir():
            try:
                claim(out)
            except Foreign as why:
                raise UsageError(
                    f"--out {name}: refusing to replace it: {shown(str(why))}; give a new or "
                    "empty folder, or remove that folder yourself"
                ) from None
            except OSError as exc:
                raise UsageError(f"--out {name}: cannot read it: {exc.strerror or exc}") from None
        self._check_parent()
        return self

    def _check_parent(self) -> None:
        """The nearest existing ancestor must be a folder the tool can create entries in."""
        check_writable_parent(self.out, "--out")

    # -- for the run ---------------------------------------------------------------------
    def lock(self) -> None:
        """Hold ``.NAME.upsampcheck-lock`` next to ``--out`` for the run (missing parents are
        created now and removed again when the run writes nothing), then clean up what killed
        runs left beside ``--out``."""
        missing = []
        folder = self.parent
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        path = self.parent / f".{self.out.name}.upsampcheck-lock"
        try:
            with signals.deferred():
                for folder in reversed(missing):
                    folder.mkdir()
                    self._created.append(folder)
                fd = self._take_lock(path)
                self._lock_fd, self._lock_path = fd, path
        except OSError as exc:
            self.release()
            raise_write_error(exc, self.parent)
        self._recover()

    def _take_lock(self, path: Path) -> int:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            if not try_lock(fd):
                os.close(fd)
                raise UsageError(
                    f"--out {shown(self.out)}: another upsampcheck run is writing it; "
                    "wait for that run or give another --out"
                )
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd  # still the file at that path (not one a finished run removed)
            os.close(fd)

    def release(self, wrote: bool = False) -> None:
        """Drop the lock (removing its file) and, when nothing was written, the parents made."""
        with signals.deferred():
            if self._lock_fd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._lock_path)
                os.close(self._lock_fd)
                self._lock_fd = None
            if not wrote:
                for folder in reversed(self._created):
                    with contextlib.suppress(OSError):
                        folder.rmdir()
            self._created = []

    @contextlib.contextmanager
    def staged(self) -> Iterator[Path]:
        """A staging folder to fill; on normal exit it gets the marker and replaces ``--out``.

        On any error or signal the staging folder is removed and ``--out`` is untouched; an
        OSError while writing (a full disk, a read-only file system) becomes a one-line usage
        error.
        """
        self.parent.mkdir(parents=True, exist_ok=True)
        try:
            with signals.deferred():
                staging = Path(
                    tempfile.mkdtemp(
                        prefix=f".{self.out.name}.upsampcheck-{os.getpid()}-", dir=self.parent
                    )
                )
        except OSError as exc:
            raise_write_error(exc, self.parent)
        try:
            yield staging
            write_marker(staging)
            with signals.deferred():
                self.check()  # nothing foreign appeared meanwhile
                self._swap(staging)
                signals.committed()
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise_write_error(exc, self.out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _swap(self, staging: Path) -> None:
        os.chmod(staging, 0o755)
        if not os.path.lexists(self.out):
            staging.rename(self.out)
            return
        old = self.parent / f".{self.out.name}.upsampcheck-old-{os.getpid()}"
        self.out.rename(old)
        try:
            staging.rename(self.out)
        except BaseException:
            old.rename(self.out)
            raise
        if not remove_claimed(old):
            sys.stderr.write(
                f"upsampcheck: note: kept {shown(old)}: files appeared in the earlier report "
                "while this run wrote the new one\n"
            )

    def leftovers(self) -> list[Path]:
        """What earlier runs on this ``--out`` left beside it, by the tool's own names only:
        staging folders ``.NAME.upsampcheck-PID-XXXX`` and old reports
        ``.NAME.upsampcheck-old-PID`` (real folders, never links)."""
        pattern = re.compile(
            re.escape(f".{self.out.name}.upsampcheck-") + r"(old-\d+|\d+-[A-Za-z0-9_]{8})\Z"
        )
        found = []
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.parent):
                if pattern.match(entry.name) and entry.is_dir(follow_symlinks=False):
                    found.append(Path(entry.path))
        return sorted(found)

    def _recover(self) -> None:
        """Under the lock no live run owns a leftover: restore an old report whose swap a kill
        cut in half (``--out`` missing), remove old reports and staging folders."""
        with signals.deferred():
            for entry in self.leftovers():
                if ".upsampcheck-old-" in entry.name:
                    if not os.path.lexists(self.out):
                        with contextlib.suppress(OSError):
                            entry.rename(self.out)
                            continue
                    remove_claimed(entry)
                else:
                    shutil.rmtree(entry, ignore_errors=True)
