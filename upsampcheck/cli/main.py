"""The entry point: run the app and map every outcome to an exit code (docs/method.md)."""

from __future__ import annotations

import os
import sys

from ..errors import UsageError
from .app import app


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


class Signalled(BaseException):
    """SIGINT or SIGTERM arrived. It unwinds like KeyboardInterrupt (staging folders and the
    figure process are cleaned up on the way) but is no KeyboardInterrupt, so nothing on the
    way (Typer turns that into a silent exit 130) swallows it; exit ``128 + signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, frame: object) -> None:
    raise Signalled(signum)


def say(text: str) -> None:
    """One line on stderr; path bytes that are not UTF-8 are shown escaped, never a crash."""
    line = f"upsampcheck: {one_line(text)}\n"
    line = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    sys.stderr.write(line)
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app and map every outcome to an exit code (0 pass, 1 a failing
    finding, 2 bad usage or input, 3 internal error, 130 SIGINT, 143 SIGTERM)."""
    import signal
    import threading

    watched = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = [signal.signal(s, _on_signal) for s in watched] if main_thread else []
    try:
        result = app(args=argv, standalone_mode=False, prog_name="upsampcheck")
    except UsageError as exc:
        say(f"error: {exc}")
        return 2
    except Signalled as exc:
        name = "SIGINT" if exc.signum == signal.SIGINT else "SIGTERM"
        say(f"{'interrupted' if name == 'SIGINT' else 'terminated'} ({name})")
        return 128 + exc.signum
    except (Exception, KeyboardInterrupt) as exc:
        kind = click_kind(exc)
        if kind == "exit":
            return exc.exit_code
        if kind == "usage":  # bad flags
            say(f"error: {exc.format_message().replace('Value error, ', '')}")
            return 2
        if kind == "abort" or isinstance(exc, KeyboardInterrupt):
            say("interrupted (SIGINT)")
            return 130
        if os.environ.get("UPSAMPCHECK_DEBUG") == "1":
            import traceback

            traceback.print_exc()
            return 3
        say(
            f"internal error: {type(exc).__name__}: {exc} (set UPSAMPCHECK_DEBUG=1 for a traceback)"
        )
        return 3
    finally:
        for sig, handler in zip(watched, previous, strict=False):
            signal.signal(sig, handler)
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point. Once the run is over, exit without tearing the interpreter
    down: freeing torch's modules and a model's tensors one object at a time takes about half
    a second, and nothing is left to do by then (every file the run wrote is closed, the exit
    handlers run, stdout and stderr are flushed)."""
    code = main()
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
            pass
    os._exit(code)
