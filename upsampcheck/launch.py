"""The console script's entry: cheap to start, safe from the first instruction.

Before anything heavy is imported, closed standard descriptors get ``/dev/null``
(:func:`~upsampcheck.streams.ensure_descriptors`), SIGINT/SIGTERM/SIGHUP end the process
with one line and ``128 + signum`` (nothing is written yet, so there is nothing to clean up),
and on a machine busy with other work torch's threads are told to sleep, not spin, between
parallel regions (:mod:`~upsampcheck.busy`); then the command line
(:func:`upsampcheck.cli.main.main`) takes over with its own handlers.
"""

from __future__ import annotations

import os
import signal
import sys


def _early(signum: int, frame: object) -> None:
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    name = signal.Signals(signum).name
    try:
        os.write(2, f"upsampcheck: {word} ({name})\n".encode())
    except OSError:
        pass
    os._exit(128 + signum)


def run() -> None:
    """Run the command line and exit with its code, without tearing the interpreter down:
    freeing torch's modules and a model's tensors one object at a time takes about half a
    second, and nothing is left to do by then (every file the run wrote is closed, the exit
    handlers run, stdout and stderr are flushed)."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _early)
    from .streams import ensure_descriptors

    ensure_descriptors()
    from .busy import wait_passively_when_busy

    wait_passively_when_busy()  # before torch is imported: its threads read it once
    from .cli.main import main

    code = main()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
