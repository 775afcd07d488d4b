"""What every command shares: the choices, the options with their help, the threshold flags,
the delivery of a report, progress on stderr."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import UsageError

if TYPE_CHECKING:
    from ..outputs.folder import Delivery


class LayerType(str, Enum):
    transposed = "transposed"
    subpixel = "subpixel"
    nearest = "nearest"
    linear = "linear"
    stretch = "stretch"


class Init(str, Enum):
    default = "default"
    ones = "ones"
    icnr = "icnr"


class Format(str, Enum):
    text = "text"
    json = "json"
    junit = "junit"
    github = "github"


class Check(str, Enum):
    tonal = "tonal"
    filtering = "filtering"
    replicas = "replicas"
    offset = "offset"


T, CI = "Thresholds", "Output and CI"


def shipped_table(section: str) -> dict[str, object]:
    """A table of the shipped ``default.toml`` (``thresholds``, ``audio``), for the help;
    tomllib only, so help stays light."""
    from ..config import default_config_path, read_toml

    try:
        return read_toml(default_config_path())[section]
    except Exception:  # a broken install still gets its help
        return {}


DEFAULTS = shipped_table("thresholds")
AUDIO_DEFAULTS = shipped_table("audio")


def default_of(key: str, unit: str = " dB", table: dict[str, object] | None = None) -> str:
    """``\\[default: -40 dB]`` (escaped for rich markup) from configs/default.toml's
    ``[thresholds]`` (or ``table``)."""
    value = (DEFAULTS if table is None else table).get(key)
    if isinstance(value, list):
        shown = ", ".join(map(str, value)) or "none"
    else:
        shown = "?" if value is None else f"{value:g}{unit}"
    return f"\\[default: {shown}]"


Arch = Annotated[
    Optional[str],
    typer.Option(
        help="MODULE:CALLABLE that builds the model (importable from here or PYTHONPATH) "
        "\\[default: none: the checkpoint holds the model]."
    ),
]
ArchKwargs = Annotated[
    Optional[str],
    typer.Option(help="JSON object of keyword arguments for --arch \\[default: none]."),
]
Weights = Annotated[
    Optional[str],
    typer.Option(
        help="Which weights of a checkpoint that holds several: a sub-dict key or a key "
        "prefix (e.g. ema, model_ema, gen_ema.)."
    ),
]
TrustCheckpoint = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Allow formats that run code when loaded (TorchScript, .pt2, pickled modules).",
        metavar="",
    ),
]
InputShape = Annotated[
    Optional[str],
    typer.Option(
        help="One example's input shape, no batch, time last: D1,...,T \\[default: inferred]."
    ),
]
Method = Annotated[str, typer.Option(help="Method to call instead of forward (e.g. decode).")]
SampleRate = Annotated[
    Optional[float],
    typer.Option(help="Sample rate of the output audio in Hz \\[default: 16000, said in a note]."),
]
SilenceValue = Annotated[
    float,
    typer.Option(help="What silence means at the input (a log-mel vocoder: its log floor)."),
]
Out = Annotated[
    Path,
    typer.Option(
        "--out",
        "-o",
        help="Report folder: written whole, and it replaces only a folder upsampcheck wrote.",
        rich_help_panel=CI,
    ),
]
ModelSeed = Annotated[
    Optional[int],
    typer.Option(help="Seed for a fresh initialisation and the probes \\[default: 0]."),
]
Seed = Annotated[
    Optional[int],
    typer.Option(help="Seed for weights and noise probes \\[default: 0, or the spec's seed]."),
]
Device = Annotated[
    str,
    typer.Option(
        help="auto (CUDA when present), cpu, cuda, cuda:N or mps; checked before any work."
    ),
]
Fmt = Annotated[
    Format,
    typer.Option(
        "--format",
        help="What goes to stdout: text (table), json (report.json), junit (XML), github (workflow commands).",
        rich_help_panel=CI,
    ),
]
Plots = Annotated[
    bool,
    typer.Option(
        "--plots/--no-plots",
        help="Write the PNG figures, report.html and audio/*.wav.",
        rich_help_panel=CI,
        metavar="",
    ),
]
ProbeSamples = Annotated[
    Optional[int],
    typer.Option(help="Input samples per probe \\[default: enough for 32768 output samples]."),
]
Baseline = Annotated[
    Optional[Path],
    typer.Option(
        help="Fail only on regressions against this baseline \\[default: none].",
        rich_help_panel=CI,
    ),
]
WriteBaseline = Annotated[
    Optional[Path],
    typer.Option(
        help="Store this run's measurements as a baseline \\[default: none].",
        rich_help_panel=CI,
    ),
]
Tolerance = Annotated[float, typer.Option(help="Baseline tolerance in dB.", rich_help_panel=CI)]
TonalFail = Annotated[
    Optional[float],
    typer.Option(
        help=f"Fail on a tonal line above this (dB re signal) {default_of('tonal-fail-db')}.",
        rich_help_panel=T,
    ),
]
TonalWarn = Annotated[
    Optional[float],
    typer.Option(
        help=f"Warn on a tonal line above this {default_of('tonal-warn-db')}.", rich_help_panel=T
    ),
]
LineFloor = Annotated[
    Optional[float],
    typer.Option(help=f"Ignore lines below this {default_of('line-floor-db')}.", rich_help_panel=T),
]
LineProm = Annotated[
    Optional[float],
    typer.Option(
        help=f"A line must stand this far above its floor {default_of('line-prominence-db')}.",
        rich_help_panel=T,
    ),
]
FiltWarn = Annotated[
    Optional[float],
    typer.Option(
        help="Warn when the response at 0.9 of the input Nyquist is below this "
        f"{default_of('filtering-warn-db')}.",
        rich_help_panel=T,
    ),
]
RepWarn = Annotated[
    Optional[float],
    typer.Option(
        help=f"Warn when the first image is above this {default_of('replicas-warn-db')}.",
        rich_help_panel=T,
    ),
]
OffWarn = Annotated[
    Optional[float],
    typer.Option(
        help=f"Warn when DC under silence is above this {default_of('offset-warn-db')}.",
        rich_help_panel=T,
    ),
]
FailOn = Annotated[
    Optional[list[Check]],
    typer.Option(
        help=f"Warnings of this check fail too: tonal, filtering, replicas or offset "
        f"(repeatable) {default_of('fail-on')}.",
        rich_help_panel=T,
        metavar="CHECK",
    ),
]
ExitZero = Annotated[
    bool,
    typer.Option(
        "--exit-zero", help="Exit 0 even when a finding fails.", rich_help_panel=CI, metavar=""
    ),
]


THRESHOLD_PARAMS = (
    "tonal_fail_db",
    "tonal_warn_db",
    "line_floor_db",
    "line_prominence_db",
    "filtering_warn_db",
    "replicas_warn_db",
    "offset_warn_db",
    "fail_on",
)


def threshold_flags(params: dict[str, object]) -> dict[str, object]:
    """A command's threshold flags keyed like the config keys (``tonal-fail-db``)."""
    out = {name.replace("_", "-"): params[name] for name in THRESHOLD_PARAMS}
    if out["fail-on"] is not None:
        out["fail-on"] = [c.value for c in out["fail-on"]] or None
    return out


Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Print the verdict line only.", rich_help_panel=CI, metavar=""
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Also print how long each step took.",
        rich_help_panel=CI,
        metavar="",
    ),
]


def make_delivery(params: dict[str, object], renderer: object) -> Delivery:
    """What happens to a command's report, from its output and CI options."""
    from ..outputs.folder import Delivery

    if params.get("quiet") and params.get("verbose"):
        raise UsageError("--quiet and --verbose exclude each other; give one")
    return Delivery(
        params["out"],
        params["format"].value,
        params["plots"],
        params["baseline"],
        params["write_baseline"],
        params["tolerance_db"],
        params["exit_zero"],
        renderer,
        verbosity=-1 if params.get("quiet") else int(bool(params.get("verbose"))),
    )


def parse_json_object(text: str) -> dict:
    """``--arch-kwargs``: a JSON object within the bounds of :mod:`~upsampcheck.parsed`
    (nesting, integer size), or a one-line usage error naming the key."""
    from ..parsed import load_json_bounded

    value = load_json_bounded(text, "--arch-kwargs")
    if not isinstance(value, dict):
        raise UsageError('--arch-kwargs must be a JSON object, e.g. \'{"sources": ["a"]}\'')
    return value


LONG_STEP_SECONDS = 10.0
"""Off a terminal, a step still running after this long is said on stderr, and every step
after it as it starts: a long run (a large model on CPU) says what it is doing, a short one
prints nothing."""


class progress_reporter:
    """A transient rich spinner on stderr naming the current step on a terminal; off one, a
    line per step once the run has taken long (:data:`LONG_STEP_SECONDS`)."""

    def __init__(self) -> None:
        self.lines = StepLines()

    def __enter__(self):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.progress.__enter__()
        self.task = self.progress.add_task("starting", total=None)
        lines = self.lines if not console.is_terminal else None

        def step(text: str) -> None:
            self.progress.update(self.task, description=text)
            if lines is not None:
                lines.step(text)

        return step

    def __exit__(self, *exc: object) -> None:
        self.lines.stop()
        self.progress.__exit__(*exc)


class StepLines:
    """The steps of a long run as lines on stderr (off a terminal): a timer says the current
    step once it has run :data:`LONG_STEP_SECONDS`; from then on each step is said as it
    starts, with the time since the run began."""

    def __init__(self, after: float = LONG_STEP_SECONDS) -> None:
        import threading
        import time

        self.after, self.started, self.said = after, time.monotonic(), False
        self.lock, self.timer, self.text = threading.Lock(), None, ""

    def step(self, text: str) -> None:
        import threading

        with self.lock:
            self.text = text
            if self.timer is not None:
                self.timer.cancel()
            if self.said:
                self._say()
                return
            self.timer = threading.Timer(self.after, self._late, args=(text,))
            self.timer.daemon = True
            self.timer.start()

    def _late(self, text: str) -> None:
        with self.lock:
            if self.text == text and self.timer is not None:
                self.said = True
                self._say()

    def _say(self) -> None:
        import sys
        import time

        from .main import say

        if not (sys.stderr and not sys.stderr.closed):
            return
        try:
            say(f"{self.text} ({time.monotonic() - self.started:.0f} s)")
        except (OSError, ValueError):
            pass  # a closed or full stderr: the run goes on

    def stop(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = None
