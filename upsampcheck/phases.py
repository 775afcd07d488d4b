"""Where a run's time goes: a per-phase account (``--verbose``; ``timings`` in report.json).

The run is cut into fixed phases along the data path (:data:`PHASES`). Code marks the phase
it is in with ``with phase("probe pass"):``; phases nest, and every second goes to the
innermost one open, so the phases add up to the run: a standalone drive inside the
measurement counts as ``standalone drives``, not twice. What no phase claims after the
command started is ``other`` (option parsing, the terminal summary).

``start-up`` is the time from the process's start to the command's first line (the
interpreter, Typer, the CLI's own modules), read from ``/proc/self/stat`` where there is one;
the rest is ``time.perf_counter`` around each phase. Nothing here imports torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = (
    "start-up",
    "import",
    "load",
    "discovery",
    "probe pass",
    "standalone drives",
    "measurement",
    "figures",
    "page",
    "write",
)
"""The phases, in the order a run meets them: ``import`` is torch and the analysis modules;
``load`` the model or audio; ``discovery`` the short passes that find the stages, their rates
and the probe's length; ``probe pass`` the batched forward with the stages' taps and their
in-pass reductions; ``standalone drives`` each replayable stage driven alone; ``measurement``
the rest of the analysis (lines, attribution, findings); ``figures`` waiting for the figure
workers; ``page`` report.html with its clips; ``write`` report.json, verdict.txt and the
folder's swap into place."""


class PhaseClock:
    """Seconds per phase, each second to the innermost open phase."""

    def __init__(self) -> None:
        self.resets = 0
        self.reset()

    def reset(self) -> None:
        """Start a new account now (a command's first line). ``start-up`` is counted for the
        process's first command only (later ones, as in tests, had none)."""
        self.seconds: dict[str, float] = {}
        self._open: list[list] = []  # [name, perf_counter when it last resumed]
        self.started = time.perf_counter()
        self.start_up = process_age() if self.resets == 1 else None
        self.resets += 1

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count the time inside the block to ``name`` (less any phase opened inside it)."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        now = time.perf_counter()
        if self._open:
            self._charge(self._open[-1], now)
        self._open.append([name, now])
        try:
            yield
        finally:
            now = time.perf_counter()
            self._charge(self._open.pop(), now)
            if self._open:
                self._open[-1][1] = now

    def _charge(self, entry: list, now: float) -> None:
        self.seconds[entry[0]] = self.seconds.get(entry[0], 0.0) + now - entry[1]
        entry[1] = now

    def account(self) -> dict[str, float]:
        """``{phase: seconds}`` in :data:`PHASES` order (phases never entered left out), then
        ``other`` and ``total`` (from the process's start where it is known), to the
        millisecond."""
        now = time.perf_counter()
        seconds = dict(self.seconds)
        for entry in self._open:  # phases still open: their time so far
            seconds[entry[0]] = seconds.get(entry[0], 0.0) + now - entry[1]
        if self.start_up is not None:
            seconds["start-up"] = self.start_up
        claimed = sum(s for name, s in seconds.items() if name != "start-up")
        timed = {name: round(seconds[name], 3) for name in PHASES if name in seconds}
        run = now - self.started
        timed["other"] = round(max(run - claimed, 0.0), 3)
        timed["total"] = round(run + (self.start_up or 0.0), 3)
        return timed


def process_age() -> float | None:
    """Seconds since this process started (``/proc/self/stat``'s start time against the
    boot-time clock, to 1/CLK_TCK), or None where that cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / ticks
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return age if 0.0 <= age < 86400.0 else None


CLOCK = PhaseClock()
"""The running command's account."""
phase = CLOCK.phase
