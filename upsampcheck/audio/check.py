"""Every file of one ``upsampcheck audio`` call into one report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import AudioThresholds
from ..errors import UsageError
from ..report.audio import AudioReport, file_findings
from ..subjects.audio import open_info
from .analyse import analyse_file

MEDIA_FILES = 8
"""Files whose figures and clips the report holds: the first ones given (about 3 MB each at
48 kHz stereo). The rest are measured alike and reported in numbers (the table, report.json,
the summary figure), so memory and the page stay bounded in the number of files."""


def check_audio(
    paths: list[Path],
    thresholds: AudioThresholds,
    progress: Callable[[str], None] | None = None,
) -> AudioReport:
    """Analyse every file and return one :class:`AudioReport` for all (a bad file is refused
    before any is analysed)."""
    if not paths:
        raise UsageError("give at least one audio FILE")
    for path in paths:
        open_info(path)
    results = [
        analyse_file(p, thresholds, i, progress, media=i < MEDIA_FILES) for i, p in enumerate(paths)
    ]
    findings = [f for r in results for f in file_findings(r, thresholds)]
    notes = [note for r in results for note in r.notes]
    if len(paths) > MEDIA_FILES:
        notes.append(
            f"figures and clips for the first {MEDIA_FILES} of the {len(paths)} files; every "
            "file is measured alike and reported in the table, report.json and summary.png"
        )
    name = results[0].label if len(results) == 1 else f"{len(results)} files"
    subject = {"kind": "audio", "name": name, "files": [r.label for r in results]}
    if len(results) == 1:
        subject["file"] = results[0].label  # where CI annotations point
    return AudioReport(subject, thresholds, results, findings, notes)
