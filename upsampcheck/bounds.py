"""The valid range of every number a user gives, and the memory a run will need.

Each range is checked before anything is allocated; a value outside is a one-line
:class:`~.errors.UsageError` that names the option and the range. The README's table lists the
same ranges.

==================  ==========================  ==============================================
what                range                       why
==================  ==========================  ==============================================
stride / factor     2 .. 256 per layer          real upsamplers use 2 .. 16
total factor        up to 65536 (a stack)       the probe period grows with it
kernel length       0 .. 4096                   and never longer than the probe
channels            1 .. 1024
probe samples       16 .. 2**24 (16.7 M)        per probe, at the stack's input
--input-shape       1 to 4 dims, time <= 2**24  at most 2**26 (67 M) values per example
sample rate         1 Hz .. 10 MHz, finite      rules out 0, negatives, NaN, inf, subnormals
seed                0 .. 2**64 - 1              what ``torch.manual_seed`` accepts
timeout             > 0 s, finite
==================  ==========================  ==============================================
"""

from __future__ import annotations

import math
import os

from .errors import UsageError

STRIDE = (2, 256)
TOTAL_FACTOR = 65536
LENGTH = (0, 4096)
CHANNELS = (1, 1024)
PROBE_SAMPLES = (16, 2**24)
INPUT_DIMS = 4
INPUT_VALUES = 2**26
"""``--input-shape``: at most this many dimensions and values per example (time <= the
largest probe, :data:`PROBE_SAMPLES`)."""
SAMPLE_RATE = (1.0, 1e7)
SEED = (0, 2**64 - 1)
MEMORY_SHARE = 0.8
"""A run may plan on this share of the memory available when it starts."""


def check_int(value: object, name: str, bounds: tuple[int, int]) -> int:
    """An integer within ``bounds`` (inclusive), or a one-line usage error naming ``name``."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{name} must be an integer from {low} to {high} (got {value!r})")
    return value


def check_rate(value: object, name: str = "sample rate") -> float:
    """A finite sample rate in Hz within :data:`SAMPLE_RATE`."""
    low, high = SAMPLE_RATE
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{name} must be a number of Hz from {low:g} to {high:g} (got {value!r})")
    return float(value)


def check_seed(value: object) -> int:
    return check_int(value, "--seed", SEED)


def check_timeout(value: float | None) -> float | None:
    """None (no limit) or a finite number of seconds > 0."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise UsageError(f"--timeout must be a positive number of seconds (got {value!r})")
    return value


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable``), or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**29 else f"{n_bytes / 2**20:.0f} MiB"


def fits_memory(needed: float, available: int | None = None) -> bool:
    """Whether ``needed`` bytes are within :data:`MEMORY_SHARE` of the available memory (True
    where it cannot be read)."""
    available = available_memory() if available is None else available
    return available is None or needed <= MEMORY_SHARE * available


def check_memory(needed: float, hint: str, available: int | None = None) -> None:
    """Refuse a run that would need more than :data:`MEMORY_SHARE` of the available memory.

    ``needed`` is an estimate in bytes from the shapes; ``hint`` says what to lower.
    """
    available = available_memory() if available is None else available
    if available is not None and needed > MEMORY_SHARE * available:
        raise UsageError(
            f"this run would need about {gib(needed)} of memory and {gib(available)} is "
            f"available; {hint}"
        )
