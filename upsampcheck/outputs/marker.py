"""The ``.upsampcheck`` marker: what the tool claims it wrote in a report folder.

A marker is a claim, not a proof: report folders travel as CI artifacts and anyone can write
one. So a folder is taken as the tool's own only when every part of the claim checks out on
disk, and nothing is ever deleted that the check did not see:

- the marker is a regular file of at most :data:`MARKER_BYTES`, JSON of depth at most 4:
  ``{"tool": "upsampcheck", "version": …, "files": [{"path", "size", "sha256"}, …]}``
  (an entry may also be a bare path: markers written before sizes and hashes were recorded);
- every listed path is *plain*: relative, ``/``-separated, no empty, ``.`` or ``..``
  component, no NUL or backslash, at most :data:`MAX_DEPTH` components;
- every listed file is on disk as a regular file, each folder on its way a real folder (both
  seen with ``lstat``, never followed), with the recorded size and SHA-256;
- nothing else is in the folder: no unlisted file, no link, no FIFO, no empty folder.

:func:`claim` reads all that (and refuses anything odd with the reason in words);
:func:`remove_claimed` deletes exactly the claimed files, each relative to a folder
descriptor opened without following links (``unlinkat``), and then the folders left empty.
Where the platform has no descriptor-relative calls (Windows), each path is re-checked with
``lstat`` just before it is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..parsed import json_depth, read_at_most

MARKER = ".upsampcheck"
"""The marker file in every report folder."""
MARKER_BYTES = 1 << 20
"""A larger marker is no marker the tool wrote (a report lists a few hundred files)."""
MAX_FILES = 20_000
MAX_DEPTH = 8
"""Path components of a listed file (reports nest one or two folders)."""
MAX_NAME = 255

_FD_CALLS = os.open in os.supports_dir_fd and os.unlink in os.supports_dir_fd
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class Foreign(Exception):
    """The folder is not (provably) a report folder the tool wrote; the message says why."""


@dataclass(frozen=True)
class Entry:
    """One file the marker claims: its plain relative path, and size and hash if recorded."""

    path: str
    size: int | None = None
    sha256: str | None = None


def plain_path(rel: object) -> str:
    """``rel`` if it is a plain relative path below a folder, else :class:`Foreign`."""
    if not isinstance(rel, str) or not rel:
        raise Foreign(f"its marker lists {rel!r}, which is no file name")
    parts = rel.split("/")
    bad = (
        "\0" in rel
        or "\\" in rel
        or len(parts) > MAX_DEPTH
        or any(p in ("", ".", "..") or len(p.encode("utf-8", "surrogateescape")) > MAX_NAME
               for p in parts)
        or rel == MARKER
    )  # fmt: skip
    if bad:
        raise Foreign(f"its marker lists {rel!r}, which is not a plain name inside the folder")
    return rel


def _entry(item: object) -> Entry:
    if isinstance(item, str):
        return Entry(plain_path(item))
    if not isinstance(item, dict) or set(item) != {"path", "size", "sha256"}:
        raise Foreign("its marker has an entry that is neither a path nor {path, size, sha256}")
    size, digest = item["size"], item["sha256"]
    ok_size = isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**53
    ok_hash = (
        isinstance(digest, str) and len(digest) == 64 and set(digest) <= set("0123456789abcdef")
    )
    if not (ok_size and ok_hash):
        raise Foreign(f"its marker has a malformed size or hash for {item['path']!r}")
    return Entry(plain_path(item["path"]), size, digest)


def parse_marker(text: str) -> list[Entry]:
    """The entries of a marker's text, or :class:`Foreign` saying what is wrong with it."""
    if json_depth(text) > 4:
        raise Foreign("its marker is nested too deep to be one the tool wrote")
    try:
        doc = json.loads(text)
    except ValueError:
        raise Foreign("its marker is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("tool") != "upsampcheck":
        raise Foreign("its marker is no upsampcheck marker")
    files = doc.get("files")
    if not isinstance(files, list) or len(files) > MAX_FILES:
        raise Foreign("its marker has no list of files")
    entries = [_entry(item) for item in files]
    if len({e.path for e in entries}) != len(entries):
        raise Foreign("its marker lists a file twice")
    return entries


# -- reading a folder without following links ----------------------------------------------


def _open_dir(name: str | Path, dir_fd: int | None = None) -> int:
    """A descriptor of the real folder ``name`` (a link there raises ``OSError``)."""
    flags = os.O_RDONLY | _NOFOLLOW | _DIRECTORY
    fd = os.open(name, flags, dir_fd=dir_fd) if dir_fd is not None else os.open(name, flags)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotADirectoryError(name)
    return fd


@contextlib.contextmanager
def opened_dir(folder: Path) -> Iterator[int | None]:
    """A descriptor of ``folder`` (None where the platform lacks descriptor-relative calls)."""
    if not _FD_CALLS:
        if Path(folder).is_symlink() or not Path(folder).is_dir():
            raise Foreign("it is not a real folder")
        yield None
        return
    fd = _open_dir(folder)
    try:
        yield fd
    finally:
        os.close(fd)


def _lstat(folder: Path, fd: int | None, name: str) -> os.stat_result:
    if fd is None:
        return os.lstat(Path(folder) / name)
    return os.stat(name, dir_fd=fd, follow_symlinks=False)


def _walk(folder: Path, fd: int | None, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(relative path, ``st_mode``) of every entry below ``folder``, links not followed."""
    names = sorted(os.listdir(fd if fd is not None else folder))
    for name in names:
        rel = prefix + name
        mode = _lstat(folder, fd, name).st_mode
        yield rel, mode
        if stat.S_ISDIR(mode):
            if fd is None:
                yield from _walk(Path(folder) / name, None, rel + "/")
            else:
                sub = _open_dir(name, fd)
                try:
                    yield from _walk(Path(folder) / name, sub, rel + "/")
                finally:
                    os.close(sub)


@contextlib.contextmanager
def _parent(fd: int, rel: str) -> Iterator[tuple[int, str]]:
    """(descriptor of the folder holding ``rel``, its last name), reached through real
    folders only: a link on the way raises ``OSError``."""
    parts = rel.split("/")
    opened: list[int] = []
    try:
        here = fd
        for part in parts[:-1]:
            here = _open_dir(part, here)
            opened.append(here)
        yield here, parts[-1]
    finally:
        for opened_fd in reversed(opened):
            os.close(opened_fd)


def _checked_path(folder: Path, rel: str) -> Path | None:
    """Without descriptor calls: the path of ``rel`` if no part of it below ``folder`` is a
    link (checked just before use)."""
    path = Path(folder, *rel.split("/"))
    chain = [path, *list(path.parents)[: rel.count("/")]]
    return None if any(p.is_symlink() for p in chain) else path


def _read_file(folder: Path, fd: int | None, rel: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``rel`` below ``folder``, never through a link."""
    if fd is None:
        path = _checked_path(folder, rel)
        if path is None or not path.is_file():
            raise Foreign(f"{rel} is not a regular file")
        return path.read_bytes()
    with _parent(fd, rel) as (here, name):
        file_fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=here)
        with os.fdopen(file_fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                raise Foreign(f"{rel} is not a regular file")
            data = fh.read() if limit is None else read_at_most(fh, limit + 1)
    if limit is not None and len(data) > limit:
        raise Foreign(f"{rel} is larger than any marker the tool writes")
    return data


def _marker_entries(folder: Path, fd: int | None, on_disk: dict[str, int]) -> list[Entry]:
    if MARKER not in on_disk:
        raise Foreign("it is not empty and holds no .upsampcheck marker")
    if not stat.S_ISREG(on_disk[MARKER]):
        raise Foreign("its .upsampcheck marker is not a regular file")
    text = _read_file(folder, fd, MARKER, MARKER_BYTES)
    try:
        return parse_marker(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise Foreign("its marker is not UTF-8 text") from None


def _unchanged(folder: Path, fd: int | None, entry: Entry) -> bool:
    """The listed file still has its recorded size and hash (always, when none is recorded)."""
    if entry.sha256 is None:
        return True
    data = _read_file(folder, fd, entry.path)
    return len(data) == entry.size and hashlib.sha256(data).hexdigest() == entry.sha256


def _folders(paths: list[str]) -> set[str]:
    """Every folder on the way to ``paths`` (``a`` and ``a/b`` for ``a/b/c``)."""
    return {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}


def claim(folder: Path) -> list[Entry]:
    """The files the tool may delete in ``folder``: [] for an empty folder, else the marker's
    entries once every one is verified on disk and nothing else is there.

    Raises :class:`Foreign` with the reason for anything else, and ``OSError`` when the
    folder cannot be read.
    """
    with opened_dir(folder) as fd:
        on_disk = dict(_walk(folder, fd))
        if not on_disk:
            return []
        entries = _marker_entries(folder, fd, on_disk)
        folders = _folders([e.path for e in entries])
        for entry in entries:
            mode = on_disk.get(entry.path)
            if mode is None:
                raise Foreign(f"its marker lists {entry.path}, which is not in the folder")
            if not stat.S_ISREG(mode):
                raise Foreign(f"its marker lists {entry.path}, which is not a regular file")
        listed = {e.path for e in entries} | folders | {MARKER}
        for rel, mode in on_disk.items():
            if rel not in listed:
                raise Foreign(f"it holds {rel}, which upsampcheck did not write")
            if rel in folders and not stat.S_ISDIR(mode):
                raise Foreign(f"{rel} is not a real folder")
        for entry in entries:
            if not _unchanged(folder, fd, entry):
                raise Foreign(f"{entry.path} changed after upsampcheck wrote it")
        return entries


def write_marker(folder: Path) -> None:
    """List every file below ``folder`` (a staging folder the tool filled) with its size and
    SHA-256 in its ``.upsampcheck`` marker."""
    files = []
    with opened_dir(folder) as fd:
        for rel, mode in _walk(folder, fd):
            if stat.S_ISREG(mode) and rel != MARKER:
                data = _read_file(folder, fd, rel)
                files.append(
                    {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                )
    doc = {"tool": "upsampcheck", "version": __version__, "files": files}
    (Path(folder) / MARKER).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def remove_claimed(folder: Path) -> bool:
    """Delete from ``folder`` each file its marker lists that is still a regular file with its
    recorded size and hash (reached through real folders), then the marker, the folders left
    empty and ``folder`` itself. Anything else stays: a file that appeared or changed, a link,
    a folder whose marker is no valid claim (then nothing is deleted). True when ``folder`` is
    gone."""
    try:
        with opened_dir(folder) as fd:
            on_disk = dict(_walk(folder, fd))
            entries = _marker_entries(folder, fd, on_disk) if on_disk else []
            for entry in sorted(entries, key=lambda e: e.path):
                if stat.S_ISREG(on_disk.get(entry.path, 0)) and _unchanged(folder, fd, entry):
                    _unlink_regular(folder, fd, entry.path)
            _unlink_regular(folder, fd, MARKER)
            for rel in sorted(_folders([e.path for e in entries]), key=lambda p: -p.count("/")):
                _rmdir(folder, fd, rel)
        os.rmdir(folder)
    except (Foreign, OSError):
        pass
    return not os.path.lexists(folder)


def _unlink_regular(folder: Path, fd: int | None, rel: str) -> None:
    """Remove the regular file ``rel`` (through real folders only); anything else is kept."""
    with contextlib.suppress(OSError):
        if fd is None:
            path = _checked_path(folder, rel)
            if path is not None and path.is_file():
                path.unlink()
            return
        with _parent(fd, rel) as (here, name):
            if stat.S_ISREG(os.stat(name, dir_fd=here, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=here)


def _rmdir(folder: Path, fd: int | None, rel: str) -> None:
    """Remove the empty real folder ``rel`` (a link or a non-empty folder is kept)."""
    with contextlib.suppress(OSError):
        if fd is None:
            path = _checked_path(folder, rel)
            if path is not None:
                path.rmdir()
            return
        with _parent(fd, rel) as (here, name):
            if stat.S_ISDIR(os.stat(name, dir_fd=here, follow_symlinks=False).st_mode):
                os.rmdir(name, dir_fd=here)
