"""The report folder contract: written completely or not at all, never over a user's files.

``--out`` is checked before any analysis runs (:meth:`OutFolder.check`), locked for the run
(:meth:`OutFolder.lock`: a second run on the same folder is refused), filled in a staging
folder next to it and swapped in with one rename (:meth:`OutFolder.staged`).

Ownership is proved by a marker: every report folder holds ``.upsampcheck``, a small JSON
file naming the tool and every file it wrote. An existing folder is replaced only when it
holds that marker and nothing the marker does not list; an empty folder may be used too.
Anything else is refused, and so are the working folder, the home folder, ``/`` and any
folder above them, whatever they hold. A symbolic link as ``--out`` is refused (never
followed), so a link can never lead the tool into a folder it did not check.

After the swap the earlier report is deleted file by file from the marker's list; anything
that appeared in it meanwhile is kept in a ``.NAME.upsampcheck-old-PID`` folder and a note
says so. Staging folders are ``.NAME.upsampcheck-PID-XXXX`` next to ``--out``: removed on any
error or signal, and a later run removes those whose process is gone (after a SIGKILL).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from ..paths import shown

MARKER = ".upsampcheck"
"""The marker file in every report folder: ``{"tool", "version", "files": [...]}``."""


NO_MARKER = "\0no marker"


def protected_folders() -> list[Path]:
    """Folders no report may replace, nor any folder above them."""
    found = [Path("/")]
    for candidate in (Path.cwd, Path.home):
        with contextlib.suppress(OSError, RuntimeError):
            found.append(candidate().resolve())
    return found


def listed_files(folder: Path) -> set[str] | None:
    """The files a folder's marker says the tool wrote, or None without a valid marker."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = doc.get("files") if isinstance(doc, dict) else None
    if doc.get("tool") != "upsampcheck" or not isinstance(files, list):
        return None
    if not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def contents(folder: Path) -> tuple[set[str], set[str]]:
    """(files, folders) below ``folder`` as relative POSIX paths; links count as files."""
    files, folders = set(), set()
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in dirs:
            path = Path(root) / name
            (files if path.is_symlink() else folders).add((rel / name).as_posix())
        files.update((rel / name).as_posix() for name in names)
    return files, folders


def foreign_entry(folder: Path) -> str | None:
    """The first entry in ``folder`` that its marker does not list (None: all ours)."""
    files, folders = contents(folder)
    if not files and not folders:
        return None
    listed = listed_files(folder)
    if listed is None:
        return NO_MARKER
    allowed_dirs = {p.as_posix() for f in listed for p in Path(f).parents if p != Path(".")}
    extra = sorted((files - listed - {MARKER}) | (folders - allowed_dirs))
    return extra[0] if extra else None


def raise_write_error(exc: OSError, where: Path) -> None:
    """An environment fault while writing, as a one-line usage error."""
    reason = "no space left on device" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    raise UsageError(
        f"cannot write the report in {shown(where)}: {reason or exc.strerror or exc}"
    ) from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
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
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {name}: exists and is not a folder")
        if out.is_dir():
            extra = foreign_entry(out)
            if extra == NO_MARKER:
                raise UsageError(
                    f"--out {name}: is not empty and holds no .upsampcheck marker, so it is no "
                    "report folder upsampcheck wrote; give a new or empty folder"
                )
            if extra is not None:
                raise UsageError(
                    f"--out {name}: holds files upsampcheck did not write ({shown(extra)}); "
                    "give a new or empty folder, or remove that folder yourself"
                )
        self._check_parent()
        return self

    def _check_parent(self) -> None:
        """The nearest existing ancestor must be a folder the tool can create entries in."""
        ancestor = self.parent
        while not ancestor.exists():
            if ancestor.is_symlink():
                raise UsageError(f"--out {shown(self.out)}: {shown(ancestor)} is a dangling link")
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UsageError(f"--out {shown(self.out)}: {shown(ancestor)} is a file, not a folder")
        try:
            Path(tempfile.mkdtemp(prefix=".upsampcheck-probe-", dir=ancestor)).rmdir()
        except OSError as exc:
            raise UsageError(
                f"--out {shown(self.out)}: cannot write in {shown(ancestor)}: {exc.strerror}"
            ) from None

    # -- for the run ---------------------------------------------------------------------
    def lock(self) -> None:
        """Hold ``.NAME.upsampcheck-lock`` next to ``--out`` for the run (missing parents are
        created now and removed again when the run writes nothing)."""
        import fcntl

        missing = []
        folder = self.parent
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        try:
            for folder in reversed(missing):
                folder.mkdir()
                self._created.append(folder)
            path = self.parent / f".{self.out.name}.upsampcheck-lock"
            while True:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise UsageError(
                        f"--out {shown(self.out)}: another upsampcheck run is writing it; "
                        "wait for that run or give another --out"
                    ) from None
                with contextlib.suppress(OSError):
                    if os.fstat(fd).st_ino == os.stat(path).st_ino:
                        break  # still the file at that path (not one a finished run removed)
                os.close(fd)
        except OSError as exc:
            self.release()
            raise_write_error(exc, self.parent)
        self._lock_fd, self._lock_path = fd, path

    def release(self, wrote: bool = False) -> None:
        """Drop the lock (removing its file) and, when nothing was written, the parents made."""
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
        self._remove_stale_staging()
        try:
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
            self.check()  # nothing foreign appeared meanwhile
            self._swap(staging)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise_write_error(exc, self.out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _swap(self, staging: Path) -> None:
        os.chmod(staging, 0o755)
        if not self.out.exists():
            staging.rename(self.out)
            return
        old = self.parent / f".{self.out.name}.upsampcheck-old-{os.getpid()}"
        self.out.rename(old)
        try:
            staging.rename(self.out)
        except BaseException:
            old.rename(self.out)
            raise
        if not remove_listed(old):
            sys.stderr.write(
                f"upsampcheck: note: kept {shown(old)}: files appeared in the earlier report "
                "while this run wrote the new one\n"
            )

    def _remove_stale_staging(self) -> None:
        """Staging folders of runs that died without cleaning up (SIGKILL)."""
        prefix = f".{self.out.name}.upsampcheck-"
        for entry in self.parent.glob(prefix + "*"):
            pid = entry.name[len(prefix) :].split("-")[0]
            if entry.is_dir() and not entry.is_symlink() and pid.isdigit():
                if int(pid) != os.getpid() and not _pid_alive(int(pid)):
                    shutil.rmtree(entry, ignore_errors=True)


def write_marker(folder: Path) -> None:
    """List every file below ``folder`` in its ``.upsampcheck`` marker."""
    files, _ = contents(folder)
    doc = {"tool": "upsampcheck", "version": __version__, "files": sorted(files - {MARKER})}
    (folder / MARKER).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def remove_listed(folder: Path) -> bool:
    """Delete what the marker lists (and the marker), then the folders left empty; True when
    ``folder`` is gone, False when something unlisted was kept."""
    listed = listed_files(folder) or set()
    for rel in sorted(listed | {MARKER}):
        path = folder / rel
        if path.is_symlink() or path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()
    for root, _, _ in sorted(os.walk(folder), key=lambda item: -len(item[0])):
        with contextlib.suppress(OSError):
            os.rmdir(root)
    return not folder.exists()
