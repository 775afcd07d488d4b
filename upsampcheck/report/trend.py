"""Many checkpoints of one model: the worst line of each stage across training (the talk's
"role of training" made visible) as ``trend.json`` and ``trend.png``."""

from __future__ import annotations

import glob
import re
import zipfile
from pathlib import Path
from typing import Any

from ..errors import UsageError

STEP_IN_NAME = re.compile(r"(?:global_step|step|iter(?:ation)?|it)[=_-]?(\d+)", re.IGNORECASE)
STEP_KEYS = ("global_step", "step", "iteration", "epoch")


def expand_checkpoints(paths: list[Path]) -> list[Path]:
    """Paths as given; a path that does not exist but holds ``*?[`` is expanded as a glob."""
    found: list[Path] = []
    for path in paths:
        if not path.exists() and any(c in str(path) for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(path)))
            if not matches:
                raise UsageError(f"{path}: the pattern matches no file")
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
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("/data.pkl") for name in archive.namelist()):
                return None
        import torch

        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if isinstance(data, dict):
        for key in STEP_KEYS:
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def order_checkpoints(paths: list[Path]) -> list[tuple[Path, int | None]]:
    """By step when every checkpoint records one, else by name."""
    steps = [(path, checkpoint_step(path)) for path in paths]
    if all(step is not None for _, step in steps):
        return sorted(steps, key=lambda item: (item[1], item[0].name))
    return sorted(steps, key=lambda item: item[0].name)


def folder_names(paths: list[Path]) -> list[str]:
    """One report folder name per checkpoint: its stem, made unique."""
    names, seen = [], {}
    for path in paths:
        stem = re.sub(r"[^\w.=-]+", "_", path.stem) or "checkpoint"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def trend_data(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """``trend.json``: per checkpoint (in order) its verdict and each stage's loudest line.

    ``entries``: ``{"name", "checkpoint", "step", "folder", "report"}`` with the report JSON.
    """
    stages: list[str] = []
    rows = []
    for entry in entries:
        report = entry["report"]
        worst = {}
        for stage in report["stages"]:
            worst[stage["name"]] = stage["tonal"]["max_level_db"]
            if stage["name"] not in stages:
                stages.append(stage["name"])
        rows.append(
            {
                "name": entry["name"],
                "checkpoint": entry["checkpoint"],
                "step": entry["step"],
                "report": f"{entry['folder']}/report.json",
                "verdict": report["verdict"],
                "worst_line_db": worst,
            }
        )
    ordered_by = "step" if all(row["step"] is not None for row in rows) else "name"
    thresholds = entries[0]["report"]["thresholds"] if entries else {}
    return {
        "schema_version": 1,
        "ordered_by": ordered_by,
        "stages": stages,
        "tonal_fail_db": thresholds.get("tonal-fail-db", {}).get("value"),
        "tonal_warn_db": thresholds.get("tonal-warn-db", {}).get("value"),
        "checkpoints": rows,
        "verdict": "fail" if any(row["verdict"] == "fail" for row in rows) else "pass",
    }
