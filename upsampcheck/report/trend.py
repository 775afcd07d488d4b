"""Many checkpoints of one model: the loudest line of the model output and of each stage across
training (the talk's "role of training" made visible) as ``trend.json`` and ``trend.png``.

The same trend comes from reports made anywhere (``upsampcheck trend REPORT...``): one process
per checkpoint in a CI matrix, a Slurm array or Ray tasks, then one ``trend`` over their report
folders. Each report carries its checkpoint's step (``subject.step``), so the order is the same
as in one multi-checkpoint run: by step when every checkpoint has one, else by name in natural
order (``ck2`` before ``ck10``).
"""

from __future__ import annotations

import glob
import math
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..paths import shown

STEP_IN_NAME = re.compile(r"(?:global_step|step|iter(?:ation)?|it)[=_-]?(\d+)", re.IGNORECASE)
STEP_KEYS = ("global_step", "step", "iteration", "epoch")


def expand_checkpoints(paths: list[Path]) -> list[Path]:
    """Paths as given; a path that does not exist but holds ``*?[`` is expanded as a glob."""
    found: list[Path] = []
    for path in paths:
        if not path.exists() and any(c in str(path) for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(path)))
            if not matches:
                raise UsageError(f"{shown(path)}: the pattern matches no file")
            found += matches
        else:
            found.append(path)
    if len(set(found)) != len(found):
        raise UsageError("the same checkpoint is given twice")
    return found


def checkpoint_step(path: Path) -> int | None:
    """The training step a checkpoint records: in its name (``step=1000``, ``g_00100000``'s
    trailing digits are not trusted) or, for a ``torch.save`` archive, in a top-level
    ``global_step``/``step``/``iteration``/``epoch`` (read with ``weights_only=True``)."""
    match = STEP_IN_NAME.search(path.stem)
    if match:
        return int(match.group(1))
    try:
        if not path.is_file() or not zipfile.is_zipfile(path):  # a FIFO is never opened
            return None
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        code = any("/code/" in name or name.endswith("/constants.pkl") for name in names)
        if code or not any(name.endswith("/data.pkl") for name in names):
            return None  # TorchScript (never unpickled here), or no torch.save archive
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if isinstance(data, dict):
        for key in STEP_KEYS:
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def natural_key(name: str) -> list:
    """Sort key that orders digit runs by value: ``ck2 < ck10``, ``step_30 < step_100``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def order_checkpoints(paths: list[Path]) -> list[tuple[Path, int | None]]:
    """By step when every checkpoint records one, else by name in natural order."""
    steps = [(path, checkpoint_step(path)) for path in paths]
    if all(step is not None for _, step in steps):
        return sorted(steps, key=lambda item: (item[1], natural_key(item[0].name)))
    return sorted(steps, key=lambda item: natural_key(item[0].name))


def folder_names(paths: list[Path]) -> list[str]:
    """One report folder name per checkpoint: its stem, made unique."""
    names, seen = [], {}
    for path in paths:
        stem = re.sub(r"[^\w.=-]+", "_", path.stem) or "checkpoint"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def loudest(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The loudest of a report's line entries (``freq_hz``, ``level_db``), or None."""
    return max(lines, key=lambda line: line["level_db"], default=None)


def trend_row(report: dict[str, Any], name: str, checkpoint: str | None, step, path: str) -> dict:
    """One checkpoint's row: the output's loudest line, each stage's, the failing count."""
    worst = {stage["name"]: stage["tonal"]["max_level_db"] for stage in report["stages"]}
    output = (report.get("output") or {}).get("lines")
    if output is None and report["stages"]:  # a single stage: its output is the model's
        output = report["stages"][-1]["tonal"]["lines"]
    top = loudest(output or [])
    return {
        "name": name,
        "checkpoint": checkpoint,
        "step": step,
        "report": path,
        "verdict": report["verdict"],
        "exit_code": report["exit_code"],
        "failing": sum(f["severity"] == "fail" for f in report["findings"]),
        "output_line_db": None if top is None else top["level_db"],
        "output_line_hz": None if top is None else top["freq_hz"],
        "worst_line_db": worst,
    }


def trend_data(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """``trend.json``: per checkpoint (in order) its verdict, failing findings, the output's
    loudest line and each stage's.

    ``entries``: ``{"name", "checkpoint", "step", "folder", "report"}`` with the report JSON.
    """
    rows = [
        trend_row(e["report"], e["name"], e["checkpoint"], e["step"], f"{e['folder']}/report.json")
        for e in entries
    ]
    stages = list(dict.fromkeys(s for row in rows for s in row["worst_line_db"]))
    ordered_by = "step" if rows and all(row["step"] is not None for row in rows) else "name"
    thresholds = entries[0]["report"]["thresholds"] if entries else {}
    notes = mixed_subjects(entries)
    return {
        "schema_version": 2,
        "ordered_by": ordered_by,
        "stages": stages,
        "tonal_fail_db": (thresholds.get("tonal-fail-db") or {}).get("value"),
        "tonal_warn_db": (thresholds.get("tonal-warn-db") or {}).get("value"),
        "checkpoints": rows,
        "verdict": "fail" if any(row["verdict"] == "fail" for row in rows) else "pass",
        "exit_code": max((row["exit_code"] for row in rows), default=0),
        **({"notes": notes} if notes else {}),
    }


def mixed_subjects(entries: list[dict[str, Any]]) -> list[str]:
    """A note when the reports are not checkpoints of one subject: different kinds (a layer
    stack beside a model) or different architectures, whose rows do not compare."""
    kinds: dict[str, list[str]] = {}
    for e in entries:
        subject = e["report"].get("subject") or {}
        kind = str(subject.get("kind") or "?")
        arch = subject.get("arch")
        label = f"{kind} {arch}" if arch else kind
        kinds.setdefault(label, []).append(e["name"])
    if len(kinds) < 2:
        return []
    said = "; ".join(f"{label}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"
                     for label, names in kinds.items())  # fmt: skip
    return [f"these reports are of different subjects ({said}); their rows do not compare"]


def find_reports(paths: list[Path]) -> list[Path]:
    """``report.json`` files from what ``upsampcheck trend`` was given: a report.json, a
    report folder, or a folder of report folders (one level down, as a CI matrix's artifacts
    are laid out)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif (path / "report.json").is_file():
            found.append(path / "report.json")
        elif path.is_dir():
            inner = sorted(path.glob("*/report.json"), key=lambda p: natural_key(p.parent.name))
            if not inner:
                raise UsageError(f"{path}: no report.json in it or in its subfolders")
            found += inner
        else:
            raise UsageError(f"{path}: no such report folder or file")
    if len({p.resolve() for p in found}) != len(found):
        raise UsageError("the same report is given twice")
    return found


LEVEL_LIMIT_DB = 1e4
"""A measured level in a report lies within +-LEVEL_LIMIT_DB (levels are floored far above
the low end; nothing real comes near the high end)."""
FREQ_LIMIT_HZ = 1e9
STEP_LIMIT = 2**63 - 1
NAME_LIMIT = 256
SEVERITIES = ("fail", "warn", "info", "pass")


class _Fields:
    """Typed reads from one report: each wrong field is a one-line usage error naming the
    report file and the field's key path."""

    def __init__(self, where: str) -> None:
        self.where = where

    def refuse(self, path: tuple, problem: str) -> UsageError:
        from ..parsed import key_path

        return UsageError(f"{self.where}: field {key_path(path)} {problem}")

    def get(self, doc: dict, path: tuple, kind: type | tuple, optional: bool = False) -> Any:
        """``doc[path[-1]]`` of type ``kind`` (None where ``optional``; bools are no ints)."""
        from ..parsed import describe

        if path[-1] not in doc:
            if optional:
                return None
            raise self.refuse(path, "is missing")
        value = doc[path[-1]]
        if value is None and optional:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(NAMES.get(k, k.__name__) for k in kinds)
            raise self.refuse(path, f"must be {names} (got {describe(value)})")
        return value

    def number(
        self, doc: dict, path: tuple, low: float, high: float, optional: bool = False
    ) -> float | None:
        """A finite number from ``low`` to ``high``."""
        from ..parsed import describe

        value = self.get(doc, path, (int, float), optional)
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise self.refuse(path, f"must be a finite number from {low:g} to {high:g} "
                              f"(got {describe(value)})")  # fmt: skip
        return value

    def name(self, doc: dict, path: tuple, optional: bool = False) -> str | None:
        """A printable one-line name of at most :data:`NAME_LIMIT` characters."""
        value = self.get(doc, path, str, optional)
        if value is not None and (
            len(value) > NAME_LIMIT or not value.isprintable() or (not value and not optional)
        ):
            raise self.refuse(
                path, f"must be a printable name of 1 to {NAME_LIMIT} characters on one line"
            )
        return value

    def lines(self, doc: dict, path: tuple, optional: bool = False) -> None:
        """A list of tonal lines, each with a finite ``freq_hz`` and ``level_db``."""
        lines = self.get(doc, path, list, optional)
        for i, line in enumerate(lines or []):
            at = (*path, i)
            if not isinstance(line, dict):
                raise self.refuse(at, "must be an object")
            self.number(line, (*at, "freq_hz"), 0.0, FREQ_LIMIT_HZ)
            self.number(line, (*at, "level_db"), -LEVEL_LIMIT_DB, LEVEL_LIMIT_DB)


NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}


def check_report(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` when every field ``trend`` reads from it can be trusted, else a one-line
    :class:`UsageError` naming ``where`` and the field.

    Checked: the tool's name and a known ``schema_version``; ``verdict`` ("pass" or "fail"),
    ``exit_code`` (0, 1 or 2, and 1 exactly when the verdict is "fail"), the findings' severities
    (the verdict is "fail" exactly when one fails); each stage's name and tonal lines; the output's
    lines; the tonal thresholds; the subject's name, checkpoint and step. Levels are finite and
    within +-:data:`LEVEL_LIMIT_DB`, frequencies within 0 .. :data:`FREQ_LIMIT_HZ`, steps within
    0 .. 2**63 - 1, names printable and short.
    """
    from .findings import SCHEMA_VERSION

    f = _Fields(where)
    tool = doc.get("tool") if isinstance(doc, dict) else None
    if not isinstance(tool, dict) or tool.get("name") != "upsampcheck":
        raise UsageError(f"{where}: not an upsampcheck report.json")
    if "files" in doc and "stages" not in doc:
        raise UsageError(
            f"{where}: an audio report (upsampcheck audio); trend follows layer and model "
            "reports across checkpoints"
        )
    keys = ("schema_version", "stages", "findings", "verdict", "exit_code", "thresholds")
    if any(key not in doc for key in keys):
        raise UsageError(f"{where}: incomplete report (needs {', '.join(keys)})")
    version = f.get(doc, ("schema_version",), int)
    if not 1 <= version <= SCHEMA_VERSION:
        raise f.refuse(("schema_version",), f"must be 1 to {SCHEMA_VERSION} (got {version})")
    verdict = f.get(doc, ("verdict",), str)
    if verdict not in ("pass", "fail"):
        raise f.refuse(("verdict",), 'must be "pass" or "fail"')
    code = f.get(doc, ("exit_code",), int)
    if code not in (0, 1, 2):
        raise f.refuse(("exit_code",), f"must be 0, 1 or 2 (got {code})")
    if code != (1 if verdict == "fail" else 0):
        raise f.refuse(("exit_code",), f"is {code} but the verdict is {verdict!r}")
    findings = f.get(doc, ("findings",), list)
    failing = False
    for i, finding in enumerate(findings):
        if not isinstance(finding, dict):
            raise f.refuse(("findings", i), "must be an object")
        severity = f.get(finding, ("findings", i, "severity"), str)
        if severity not in SEVERITIES:
            raise f.refuse(("findings", i, "severity"), f"must be one of {', '.join(SEVERITIES)}")
        failing = failing or severity == "fail"
    if failing != (verdict == "fail"):
        said = "a finding fails" if failing else "no finding fails"
        raise f.refuse(("verdict",), f"is {verdict!r} but {said}")
    stages = f.get(doc, ("stages",), list)
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict):
            raise f.refuse(("stages", i), "must be an object")
        f.name(stage, ("stages", i, "name"))
        tonal = f.get(stage, ("stages", i, "tonal"), dict)
        at = ("stages", i, "tonal")
        if "max_level_db" not in tonal:
            raise f.refuse((*at, "max_level_db"), "is missing")
        f.number(tonal, (*at, "max_level_db"), -LEVEL_LIMIT_DB, LEVEL_LIMIT_DB, optional=True)
        f.lines(tonal, (*at, "lines"))
    output = f.get(doc, ("output",), dict, optional=True)
    if output is not None:
        f.lines(output, ("output", "lines"), optional=True)
    thresholds = f.get(doc, ("thresholds",), dict)
    for key in ("tonal-fail-db", "tonal-warn-db"):
        entry = f.get(thresholds, ("thresholds", key), dict, optional=True)
        if entry is not None:
            f.number(entry, ("thresholds", key, "value"), -LEVEL_LIMIT_DB, LEVEL_LIMIT_DB, True)
    subject = f.get(doc, ("subject",), dict, optional=True)
    if subject is not None:
        f.name(subject, ("subject", "name"), optional=True)
        checkpoint = f.get(subject, ("subject", "checkpoint"), str, optional=True)
        if checkpoint is not None and (len(checkpoint) > 4096 or not checkpoint.isprintable()):
            raise f.refuse(("subject", "checkpoint"), "must be a printable path on one line")
        step = f.get(subject, ("subject", "step"), int, optional=True)
        if step is not None and not 0 <= step <= STEP_LIMIT:
            raise f.refuse(("subject", "step"), f"must be from 0 to 2**63 - 1 (got {step})")
    return doc


def read_report(path: Path) -> dict[str, Any]:
    """A ``report.json`` of this tool that ``trend`` can trust (:func:`check_report`), read
    within the bounds of :mod:`~upsampcheck.parsed`, or a one-line usage error naming the
    file and the field."""
    from ..parsed import load_json_bounded, read_text_bounded

    where = f"report {shown(path)}"
    doc = load_json_bounded(read_text_bounded(path, "report"), where)
    return check_report(doc, where)


def _real(path: Path) -> Path:
    """``path`` with every symbolic link resolved (absolute as written, on a link loop)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


def check_trend_out(out: Path, given: list[Path], found: list[Path]) -> None:
    """``trend --out`` may be none of its inputs, nor a folder above or inside one: not a
    path given, nor the folder of a report found (symbolic links resolved); else a one-line
    usage error, before anything is read or written."""
    target = _real(out)
    inputs = [*given, *(report.parent for report in found), *found]
    for path in inputs:
        real = _real(path)
        if target == real or target.is_relative_to(real) or real.is_relative_to(target):
            how = (
                "is" if target == real else "is inside" if target.is_relative_to(real) else "holds"
            )
            raise UsageError(
                f"--out {shown(out)} {how} the input {shown(path)}; the trend would replace "
                "a report it reads (give --out a folder of its own)"
            )


def trend_from_reports(paths: list[Path], out: Path | None = None) -> dict[str, Any]:
    """The trend of reports made anywhere, ordered as one multi-checkpoint run orders them.
    With ``out`` (where the trend goes), an ``out`` that is or overlaps an input is refused
    first (:func:`check_trend_out`)."""
    found = find_reports(paths)
    if out is not None:
        check_trend_out(out, paths, found)
    reports = [(path, read_report(path)) for path in found]
    entries = []
    for path, report in reports:
        subject = report.get("subject") or {}
        name = subject.get("name") or path.parent.name
        entries.append(
            {
                "name": name,
                "checkpoint": subject.get("checkpoint"),
                "step": subject.get("step"),
                "folder": path.parent.as_posix(),
                "report": report,
            }
        )
    if all(e["step"] is not None for e in entries):
        entries.sort(key=lambda e: (e["step"], natural_key(e["name"])))
    else:
        entries.sort(key=lambda e: natural_key(e["name"]))
    return trend_data(entries)
