"""Thresholds: defaults, ``--config`` files, ``[tool.upsampcheck]`` and flags.

Keys are kebab-case, named like the long flags (``tonal-fail-db``, ``fail-on``). Precedence,
highest first: flags, ``--config FILE`` (its ``[thresholds]`` table), ``[tool.upsampcheck]`` in
the nearest ``pyproject.toml`` above the working directory, ``configs/default.toml``. The
report records each value and where it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from .errors import UsageError
from .paths import check_input_file, shown

CHECKS = ("tonal", "filtering", "replicas", "offset")


@dataclass(frozen=True)
class Thresholds:
    """Severity thresholds in dB (see ``configs/default.toml`` for what each one means)."""

    tonal_fail_db: float
    tonal_warn_db: float
    line_floor_db: float
    line_prominence_db: float
    filtering_warn_db: float
    replicas_warn_db: float
    offset_warn_db: float
    fail_on: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict, compare=False)

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
    """Parse a TOML file; a missing, non-regular, malformed or absurdly nested file is a
    one-line :class:`UsageError` naming it (a FIFO is never opened)."""
    check_input_file(path, "TOML file")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{shown(path)}: not valid TOML: {str(exc).splitlines()[0]}") from None
    except (RecursionError, MemoryError):
        raise UsageError(f"{shown(path)}: not valid TOML: nested too deeply") from None
    except OSError as exc:
        raise UsageError(f"{shown(path)}: cannot read: {exc.strerror}") from None


def check_value(key: str, value: Any, where: str) -> Any:
    """Validate one threshold value; the error names the source and the key."""
    if key not in KEYS:
        raise UsageError(f"{where}: unknown key {key!r}; known keys: {', '.join(KEYS)}")
    if key == "fail-on":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or any(v not in CHECKS for v in value):
            raise UsageError(f"{where}: fail-on must be a list drawn from {', '.join(CHECKS)}")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{where}: {key} must be a finite number of dB (got {value!r})")
    return float(value)


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
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
    pyproject = find_pyproject(start or Path.cwd())
    if pyproject is not None:
        tool = read_toml(pyproject).get("tool", {}).get("upsampcheck", {})
        if not isinstance(tool, dict):
            raise UsageError(f"{pyproject}: [tool.upsampcheck] must be a table")
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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{where}: {key} must be a finite number (got {value!r})")
    low, high = AUDIO_RANGES.get(key, (-math.inf, math.inf))
    if not low < value <= high:
        raise UsageError(f"{where}: {key} must lie in ({low:g}, {high:g}] (got {value!r})")
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
