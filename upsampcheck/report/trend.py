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
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..paths import shown
from .trusted import read_report

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
