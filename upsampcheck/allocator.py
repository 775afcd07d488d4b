"""Give freed heap memory back to the system while a long probe pass runs.

glibc raises its mmap threshold after a large tensor is freed, so later activations of up to
32 MiB come from the heap; the small measurements kept between them pin the freed space, and
resident memory grows with every stage measured inside the pass (BigVGAN's 77 stages: 2.6 GiB
against 1.5 GiB). :func:`trim_when_grown` calls ``malloc_trim(0)`` (which returns free pages
inside the heap too) whenever the resident size has grown by :data:`GROWTH` since the last
trim: a handful of calls per pass. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

GROWTH = 128 * 2**20
"""Bytes of resident growth between two trims."""

_state: dict[str, object] = {"libc": None, "last": 0}


def _libc():
    if _state["libc"] is None:
        try:
            _state["libc"] = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else False
        except OSError:
            _state["libc"] = False
    return _state["libc"]


def resident_bytes() -> int:
    """This process's resident set size (0 where ``/proc`` is not there)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def trim_when_grown() -> bool:
    """``malloc_trim(0)`` when the resident size grew by :data:`GROWTH` since the last call
    that trimmed; True when it trimmed."""
    libc = _libc()
    if not libc:
        return False
    now = resident_bytes()
    if now - int(_state["last"]) < GROWTH:
        _state["last"] = min(int(_state["last"]), now) if _state["last"] else now
        return False
    libc.malloc_trim(0)
    _state["last"] = resident_bytes()
    return True
