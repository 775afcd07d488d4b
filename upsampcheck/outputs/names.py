"""File names in a report folder, derived from the stage names (one naming scheme everywhere):
stage ``2:transposed`` draws ``2_transposed_<probe>.png`` and plays ``audio/2_transposed_*.wav``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

SUMMARY_PNG = "summary.png"


def safe_stem(name: str) -> str:
    """``name`` with anything but letters, digits, ``.``, ``_``, ``-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") or "stage"


def file_stems(names: Iterable[str]) -> list[str]:
    """One file stem per stage name, unique even where two names sanitise alike (the later
    one gets ``-2``, ``-3``, ...)."""
    seen: dict[str, int] = {}
    stems = []
    for name in names:
        stem = safe_stem(name)
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def spectrogram_png(stem: str, probe: str) -> str:
    """The spectrogram figure of one stage and probe."""
    return f"{stem}_{probe}.png"


def figure_jobs(data: dict[str, Any]) -> list[str | int]:
    """The figures of a report's payload as separate jobs, largest first: ``"summary"``, then
    the index of every stage drawn (a stage identical to an earlier one, ``same_as``, is
    drawn once, with the first). Nothing measured (no upsampling stage): no job."""
    stages = data["stages"]
    if not stages:
        return []
    return ["summary", *(i for i, stage in enumerate(stages) if not stage.get("same_as"))]
