"""The entry point: run the app and map every outcome to an exit code (docs/method.md)."""

from __future__ import annotations

import errno
import os
import sys

from .. import signals
from ..errors import UsageError
from ..phases import CLOCK
from ..streams import GuardedStream


def one_line(text: str) -> str:
    """Collapse a message to one line."""
    return " ".join(str(text).split())


def click_kind(exc: BaseException) -> str | None:
    """ "exit", "usage" or "abort" for Click's control-flow exceptions (Typer may vendor its own
    copy of Click, so they are recognised by class name), else None."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Exit" in names and hasattr(exc, "exit_code"):
        return "exit"
    if "ClickException" in names:
        return "usage"
    if "Abort" in names:
        return "abort"
    return None


def say(text: str) -> None:
    """One line on stderr; path bytes that are not UTF-8 are shown escaped, never a crash."""
    line = f"upsampcheck: {one_line(text)}\n"
    line = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    sys.stderr.write(line)
    sys.stderr.flush()


ENVIRONMENT_ERRNOS = {
    errno.EMFILE: "too many open files (raise the limit: ulimit -n)",
    errno.ENFILE: "too many open files in the system",
    errno.ENOMEM: "out of memory",
    errno.ENOSPC: "no space left on device",
    errno.ENAMETOOLONG: "a file name is too long",
}
RESOURCE_WORDS = ("cannot allocate memory", "too many open files", "failed to map segment")


def environment_fault(exc: BaseException) -> str | None:
    """What a resource limit or a failing environment did, in words, when ``exc`` is that
    (a tight ``ulimit -v`` or ``-n`` can strike anywhere, imports included); else None."""
    if isinstance(exc, MemoryError):
        return "out of memory (is the address space limited, ulimit -v?)"
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return ENVIRONMENT_ERRNOS[exc.errno]
    if isinstance(exc, (ImportError, OSError)):
        text = str(exc).lower()
        if any(words in text for words in RESOURCE_WORDS):
            return f"cannot load a library: {one_line(str(exc))[:200]}"
    return None


def signal_behind(exc: BaseException) -> signals.Signalled | None:
    """The signal an exception stands for: a signal raised inside a hook that Python wraps
    (``RuntimeError: Error calling __set_name__`` when it lands while a class is being made,
    as pydantic's are on import) keeps it as the cause or context."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, signals.Signalled):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map every outcome to an exit code (0 pass, 1 a failing
    finding, 2 bad usage, input or environment, 3 internal error, 130 SIGINT, 143 SIGTERM,
    129 SIGHUP). stdout and stderr are guarded (:mod:`upsampcheck.streams`) for the run."""
    out, err = GuardedStream(sys.stdout), GuardedStream(sys.stderr)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        with signals.handled():
            code = _run(argv)
        late = signals.late_signal()
        if late is not None and code in (0, 1):
            say(f"note: {late} arrived after the report was complete; exit {code} (its verdict)")
        if out.error:
            say(f"note: could not write to stdout: {out.error}")
        return code
    finally:
        out.flush()
        err.flush()
        out.abandon()
        err.abandon()
        sys.stdout, sys.stderr = saved


def _run(argv: list[str] | None) -> int:
    try:
        from .app import app

        CLOCK.reset()
        result = app(args=argv, standalone_mode=False, prog_name="upsampcheck")
    except UsageError as exc:
        say(f"error: {exc}")
        return 2
    except (signals.Signalled, Exception, KeyboardInterrupt, MemoryError) as exc:
        if (held := signal_behind(exc)) is not None:
            name = signals.NAMES.get(held.signum, str(held.signum))
            say(f"{'interrupted' if name == 'SIGINT' else 'terminated'} ({name})")
            return 128 + held.signum
        kind = click_kind(exc)
        if kind == "exit":
            return exc.exit_code
        if kind == "usage":  # bad flags
            say(f"error: {exc.format_message().replace('Value error, ', '')}")
            return 2
        if kind == "abort" or isinstance(exc, KeyboardInterrupt):
            say("interrupted (SIGINT)")
            return 130
        fault = environment_fault(exc)
        if fault is not None:
            say(f"error: {fault}")
            return 2
        if os.environ.get("UPSAMPCHECK_DEBUG") == "1":
            import traceback

            traceback.print_exc()
            return 3
        say(
            f"internal error: {type(exc).__name__}: {exc} (set UPSAMPCHECK_DEBUG=1 for a traceback)"
        )
        return 3
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point (:func:`upsampcheck.launch.run` is the light one the script
    calls; this stays for ``python -c 'from upsampcheck.cli import run; run()'``)."""
    from ..launch import run as launch

    launch()
