"""Thresholds: defaults, ``--config`` files, ``[tool.upsampcheck]`` and flags.

Keys are kebab-case, named like the long flags (``tonal-fail-db``, ``fail-on``). Precedence,
highest first: flags, ``--config FILE`` (its ``[thresholds]`` table), ``[tool.upsampcheck]`` in
the nearest ``pyproject.toml`` at or above the working directory that has that table (one
without it is someone else's and is passed over, even when it is not valid TOML; see
:func:`find_pyproject_table`), ``configs/default.toml``. The report records each value and
where it came from. Every file is parsed within the bounds of :mod:`.parsed`.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import UsageError
from .parsed import check_tree, describe, load_toml_bounded, read_at_most, read_toml_bounded
from .paths import shown

CHECKS = ("tonal", "filtering", "replicas", "offset")


@dataclass(frozen=True)
class Thresholds:
    """Severity thresholds in dB (``configs/default.toml`` says what each one means).

    Build one with keyword overrides, ``Thresholds(tonal_fail_db=-30, fail_on=["filtering"])``:
    every field not given takes the shipped default (``default.toml`` only; the command line's
    merge of pyproject.toml, ``--config`` and flags is :func:`load_thresholds`). Each value is
    checked like a config value (a finite number of dB within +-1000).

    Attributes:
        tonal_fail_db: a tonal line louder than this (dB re signal) fails.
        tonal_warn_db: a tonal line louder than this warns.
        line_floor_db: lines below this are not reported.
        line_prominence_db: a line must stand this far above its surroundings.
        filtering_warn_db: the response at 0.9 of the input Nyquist below this warns.
        replicas_warn_db: a first image attenuated less than this warns.
        offset_warn_db: DC under silence above this warns.
        fail_on: checks whose warnings fail too, drawn from ``tonal``, ``filtering``,
            ``replicas``, ``offset``.
        sources: where each value came from (``"default"``, a file, ``"flag"``).
    """

    tonal_fail_db: float | None = None
    tonal_warn_db: float | None = None
    line_floor_db: float | None = None
    line_prominence_db: float | None = None
    filtering_warn_db: float | None = None
    replicas_warn_db: float | None = None
    offset_warn_db: float | None = None
    fail_on: tuple[str, ...] | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        given = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
        defaults = None
        for name, value in given.items():
            key = name.replace("_", "-")
            if value is None:
                if defaults is None:
                    defaults = read_toml(default_config_path())["thresholds"]
                value = defaults[key]
            object.__setattr__(self, name, check_value(key, value, "Thresholds"))

    def to_json(self) -> dict[str, Any]:
        """``{key: {"value": v, "source": s}}`` with kebab-case keys."""
        out = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            key = f.name.replace("_", "-")
            value = getattr(self, f.name)
            out[key] = {
                "value": list(value) if isinstance(value, tuple) else value,
                "source": self.sources.get(key, "default"),
            }
        return out


KEYS = tuple(f.name.replace("_", "-") for f in fields(Thresholds) if f.name != "sources")
"""The kebab-case threshold keys (``tonal-fail-db``, …, ``fail-on``)."""


def configs_dir() -> Path:
    """The shipped ``configs`` folder (``default.toml`` and the stack specs under ``paper/``):
    inside the package in a wheel (``upsampcheck/configs``), at the repository root in a
    checkout or an editable install (``configs/``)."""
    packaged = Path(str(resources.files("upsampcheck"))) / "configs"
    if (packaged / "default.toml").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "configs"


def default_config_path() -> Path:
    """The shipped ``default.toml``."""
    return configs_dir() / "default.toml"


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, non-regular, oversized, malformed or absurdly nested file,
    or one holding an integer beyond 2**64, is a one-line :class:`UsageError` naming the file
    and the key (a FIFO is never opened; see :mod:`.parsed`)."""
    return read_toml_bounded(path)


DB_LIMIT = 1000.0
"""A level in dB lies within +-DB_LIMIT: far beyond anything audible or measurable."""


def check_value(key: str, value: Any, where: str) -> Any:
    """Validate one threshold value; the error names the source and the key."""
    if key not in KEYS:
        raise UsageError(f"{where}: unknown key {key!r}; known keys: {', '.join(KEYS)}")
    if key == "fail-on":
        if isinstance(value, str):
            value = [value]
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list) or any(v not in CHECKS for v in value):
            raise UsageError(f"{where}: fail-on must be a list drawn from {', '.join(CHECKS)}")
        return tuple(value)
    if not is_number(value) or not -DB_LIMIT <= value <= DB_LIMIT:
        raise UsageError(
            f"{where}: {key} must be a finite number of dB from {-DB_LIMIT:g} to {DB_LIMIT:g} "
            f"(got {describe(value)})"
        )
    return float(value)


def is_number(value: Any) -> bool:
    """A finite int or float (never a bool); an int beyond 2**64 was refused when parsed."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) and abs(value) < 2**64 or math.isfinite(value)


PYPROJECT_LIMIT = 4 * 2**20
_CONFIGURES_US = re.compile(r"tool\s*\.\s*[\"']?upsampcheck\b")


def _read_small(path: Path, limit: int) -> bytes | None:
    """Up to ``limit + 1`` bytes of a regular file, or None when it is not one or cannot be
    read (opened non-blocking, so a FIFO swapped in never blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as fh:
            return read_at_most(fh, limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def find_pyproject_table(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The ``[tool.upsampcheck]`` table of the nearest ``pyproject.toml`` at or above ``start``
    that has one, and that file.

    As ruff and pytest do, a pyproject.toml without the table is passed over: it belongs to
    someone else, so ``tool = "x"``, another tool's huge integer or a file that is not valid
    TOML at all never stops a run. Only a file that names ``tool.upsampcheck`` in its text
    and cannot be read, is not valid TOML, or whose table breaks a bound
    (:mod:`.parsed`) or is not a table, is an error (exit 2, naming the file and the key).
    """
    for folder in (start, *start.parents):
        path = folder / "pyproject.toml"
        data = _read_small(path, PYPROJECT_LIMIT)
        if data is None:
            continue
        head = data[:PYPROJECT_LIMIT].decode("utf-8", "replace")
        configures = _CONFIGURES_US.search(head) is not None
        try:
            if len(data) > PYPROJECT_LIMIT:
                raise UsageError(f"{shown(path)}: larger than {PYPROJECT_LIMIT // 2**20} MiB")
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"{shown(path)}: not UTF-8 text (byte {exc.start})") from None
            doc = load_toml_bounded(text, shown(path), check=False)
        except UsageError:
            if configures:
                raise
            continue  # someone else's broken file
        tool = doc.get("tool")
        if not isinstance(tool, dict) or "upsampcheck" not in tool:
            continue
        table = tool["upsampcheck"]
        if not isinstance(table, dict):
            raise UsageError(
                f"{shown(path)}: key tool.upsampcheck must be a table (got {describe(table)})"
            )
        check_tree({"tool": {"upsampcheck": table}}, shown(path))
        return path, table
    return None


def merge_sources(
    section: str,
    check: Any,
    pyproject_table: Any,
    config: dict[str, Any] | None,
    config_name: str,
    flags: dict[str, Any] | None,
    start: Path | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """One table's values and where each came from, lowest first: ``default.toml``'s
    ``[section]``, what ``pyproject_table(tool_upsampcheck)`` picks from the nearest
    pyproject.toml, ``config`` (the table of a ``--config`` file), then ``flags``
    (kebab-case keys; None = not given). ``check(key, value, source)`` validates each."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def merge(table: Any, source: str) -> None:
        if not isinstance(table, dict):
            raise UsageError(f"{source}: [{section}] must be a table")
        for key, value in table.items():
            values[key] = check(key, value, source)
            sources[key] = source

    merge(read_toml(default_config_path())[section], "default")
    found = find_pyproject_table(start or Path.cwd())
    if found is not None:
        pyproject, tool = found
        table = pyproject_table(tool)
        if table is not None:
            merge(table, str(pyproject))
    if config:
        merge(config, config_name)
    merge({k: v for k, v in (flags or {}).items() if v is not None}, "flag")
    return values, sources


def load_thresholds(
    config: dict[str, Any] | None = None,
    config_name: str = "--config",
    flags: dict[str, Any] | None = None,
    start: Path | None = None,
) -> Thresholds:
    """Merge the threshold sources (lowest first: defaults, ``[tool.upsampcheck]`` in
    pyproject.toml, the ``[thresholds]`` table of a ``--config`` file, flags)."""
    values, sources = merge_sources(
        "thresholds", check_value, lambda tool: {k: v for k, v in tool.items() if k != "audio"},
        config, config_name, flags, start,
    )  # fmt: skip
    return Thresholds(**{k.replace("-", "_"): v for k, v in values.items()}, sources=sources)


def shipped_configs() -> dict[str, Path]:
    """Shipped stack specs by name (``paper/fig8_transposed``), sorted."""
    root = configs_dir()
    found = {p.relative_to(root).with_suffix("").as_posix(): p for p in root.rglob("*.toml")}
    found.pop("default", None)
    return dict(sorted(found.items()))


def find_config(name: str | Path) -> Path:
    """A spec path as given, or a shipped spec by name (``fig8_transposed`` or
    ``paper/fig8_transposed``); a one-line :class:`UsageError` when neither exists."""
    name = Path(name)
    if name.exists():
        return name
    shipped = shipped_configs()
    key = name.as_posix().removesuffix(".toml")
    for candidate in (key, f"paper/{key}"):
        if candidate in shipped:
            return shipped[candidate]
    raise UsageError(f"{name}: no such file, and no shipped spec of that name (see --list-configs)")


# --- audio files (`upsampcheck audio`): the [audio] table ---------------------------------

AUDIO_CHECKS = ("tonal", "offset")


@dataclass(frozen=True)
class AudioThresholds:
    """What ``upsampcheck audio`` calls a line and when it warns or fails (see the ``[audio]``
    table of ``configs/default.toml`` for what each value means)."""

    line_fail_db: float
    line_warn_db: float
    quiet_fail_db: float
    quiet_warn_db: float
    line_prominence_db: float
    line_floor_db: float
    drift_bins: float
    min_consistency: float
    grid_tolerance_bins: float
    grid_false_alarm: float
    quiet_fraction: float
    offset_warn_db: float
    clip_seconds: float
    fail_on: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    to_json = Thresholds.to_json


AUDIO_KEYS = tuple(f.name.replace("_", "-") for f in fields(AudioThresholds) if f.name != "sources")
AUDIO_RANGES = {
    "drift-bins": (0.0, 100.0),
    "min-consistency": (0.0, 1.0),
    "grid-tolerance-bins": (0.0, 5.0),
    "grid-false-alarm": (0.0, 1.0),
    "quiet-fraction": (0.0, 1.0),
    "clip-seconds": (0.0, 600.0),
}
"""Keys that are not dB, with the open-closed interval ``(low, high]`` they must lie in."""


def check_audio_value(key: str, value: Any, where: str) -> Any:
    """Validate one ``[audio]`` value; the error names the source and the key."""
    if key not in AUDIO_KEYS:
        raise UsageError(
            f"{where}: unknown [audio] key {key!r}; known keys: {', '.join(AUDIO_KEYS)}"
        )
    if key == "fail-on":
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or any(v not in AUDIO_CHECKS for v in value):
            raise UsageError(
                f"{where}: fail-on must be a list drawn from {', '.join(AUDIO_CHECKS)}"
            )
        return tuple(value)
    if not is_number(value):
        raise UsageError(f"{where}: {key} must be a finite number (got {describe(value)})")
    low, high = AUDIO_RANGES.get(key, (-DB_LIMIT, DB_LIMIT))
    if not low < value <= high:
        raise UsageError(f"{where}: {key} must lie in ({low:g}, {high:g}] (got {describe(value)})")
    return float(value)


def load_audio_thresholds(
    config: dict[str, Any] | None = None,
    config_name: str = "--config",
    flags: dict[str, Any] | None = None,
    start: Path | None = None,
) -> AudioThresholds:
    """Merge the ``[audio]`` sources, lowest first: ``default.toml``, ``[tool.upsampcheck.audio]``
    in the nearest pyproject.toml, the ``[audio]`` table of ``config``, then ``flags``."""
    values, sources = merge_sources(
        "audio", check_audio_value, lambda tool: tool.get("audio"),
        config, config_name, flags, start,
    )  # fmt: skip
    if values["line-warn-db"] > values["line-fail-db"]:
        raise UsageError("line-warn-db must not exceed line-fail-db")
    if values["quiet-warn-db"] > values["quiet-fail-db"]:
        raise UsageError("quiet-warn-db must not exceed quiet-fail-db")
    return AudioThresholds(**{k.replace("-", "_"): v for k, v in values.items()}, sources=sources)
