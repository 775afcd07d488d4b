"""torch's threads on a machine that other work keeps busy: they sleep between parallel
regions instead of spinning.

torch's OpenMP threads spin for a while after each parallel region, waiting for the next; on
cores that other processes want, the spinning takes their time slices, and a region waits for
whichever thread was descheduled. The tool runs thousands of small regions (the short
discovery passes, the reductions in the probe pass), so it suffers more than a plain forward
pass: with two CPU-bound processes beside it on two cores, EnCodec's check took 17 to 18 s
spinning and 11 to 12 s with ``OMP_WAIT_POLICY=PASSIVE``. On an idle machine, passive waiting
costs about 12 % (each region wakes its threads), so it is chosen only when other tasks are
running when the command starts: the fourth field of ``/proc/loadavg`` counts the tasks
runnable at this instant. The wait policy changes no number: the work is split the same way.
A policy the user set is left as it is.
"""

from __future__ import annotations

import os
import time

POLICY = "OMP_WAIT_POLICY"
PASSIVE_SET = {"done": False}
"""Whether :func:`wait_passively_when_busy` chose passive waiting in this process."""


SAMPLES = 3
"""Reads of the runnable count, :data:`GAP_S` apart; the least counts (a task that ran for an
instant is not load)."""
GAP_S = 0.005


def other_runnable() -> int | None:
    """Tasks runnable besides this process (``/proc/loadavg``), the least of
    :data:`SAMPLES` reads; None where that cannot be read."""
    counts = []
    for i in range(SAMPLES):
        if i:
            time.sleep(GAP_S)
        try:
            with open("/proc/loadavg", encoding="ascii") as fh:
                counts.append(int(fh.read().split()[3].split("/")[0]))
        except (OSError, ValueError, IndexError):
            return None
    return max(min(counts) - 1, 0)


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def wait_passively_when_busy(environ: dict[str, str] | None = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` (before torch is imported) when other tasks hold at
    least half the usable cores now and the user set no policy; returns whether it did."""
    environ = os.environ if environ is None else environ
    if POLICY in environ:
        return False
    others = other_runnable()
    if others is None or others < max(1, usable_cores() // 2):
        return False
    environ[POLICY] = "PASSIVE"
    PASSIVE_SET["done"] = True
    return True
