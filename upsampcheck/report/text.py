"""``verdict.txt``: a report's JSON as text, stage by stage, each distinct cause and fix once.

Repeats are written once (:mod:`.grouping`): three or more stages with the same row (kind,
factor, rates) are one row naming them all; three or more findings that differ only by stage
and numbers are one entry with ranges and the worst stage; so are such notes. The counts in
the verdict line are report.json's, finding by finding."""

from __future__ import annotations

import textwrap
from typing import Any

from .. import __version__
from ..units import hz
from .findings import SEVERITIES
from .grouping import MIN_GROUP, Entry, clusters, group_findings, group_notes
from .name_sets import compact_names

WIDTH = 100
"""Lines naming many stages wrap here (continued four spaces in)."""


def by_stage(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings of a report's JSON, each stage's together in stage order (cross-stage
    findings with the stage they are about), then the output's, then the rest."""
    order = [st["name"] for st in report.get("stages", [])] + ["output"]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(report["findings"], key=lambda f: rank.get(f["stage"], len(order)))


def summary_entries(report: dict[str, Any]) -> list[Entry]:
    """The findings as the summaries list them (:func:`~.grouping.group_findings`): stage by
    stage, a stage's own findings first, then the groups that begin at it."""
    order = [st["name"] for st in report.get("stages", [])] + ["output"]
    rank = {name: i for i, name in enumerate(order)}
    entries = group_findings(by_stage(report))
    if report.get("files") is not None:  # an audio report: findings are about files
        for entry in entries:
            entry.noun = "file"
    return sorted(entries, key=lambda e: (rank.get(e.first["stage"], len(order)), e.grouped))


def note_lines(report: dict[str, Any]) -> list[str]:
    """The notes, those that differ only by stage name and numbers once
    (:func:`~.grouping.group_notes`); the names are those of the stages and findings."""
    names = [st["name"] for st in report.get("stages", [])]
    names += [f["stage"] for f in report["findings"] if f["stage"] not in ("output", "input")]
    noun = "file" if report.get("files") is not None else "stage"
    return group_notes(report.get("notes", []), names, noun=noun)


def stage_row(stage: dict[str, Any]) -> str:
    """``(kind, xF, fs_in -> fs_out Hz)``: what a stage's row says besides its name."""
    return (
        f"({stage['kind']}, x{stage['factor']:g}, "
        f"{hz(stage['fs_in_hz'])} -> {hz(stage['fs_out_hz'])} Hz)"
    )


def stage_rows(stages: list[dict[str, Any]], min_size: int = MIN_GROUP) -> list[str]:
    """One line per stage; ``min_size`` or more with the same row: one line naming them."""
    lines = []
    for group in clusters(stages, stage_row, min_size):
        if len(group) == 1:
            lines.append(f"{group[0]['name']} {stage_row(group[0])}")
        else:
            names = compact_names([st["name"] for st in group])
            lines.extend(wrap(f"{len(group)} stages {stage_row(group[0])}: {names}"))
    return lines


def wrap(text: str) -> list[str]:
    """``text`` in lines of :data:`WIDTH`, cut only at spaces (never inside a name)."""
    return textwrap.wrap(
        text, WIDTH, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False
    ) or [text]


def verdict_counts(report: dict[str, Any]) -> str:
    """``31 fail, 146 warn, 21 info, 60 pass``: report.json's findings by severity."""
    counts = {s: sum(f["severity"] == s for f in report["findings"]) for s in SEVERITIES}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def render_text(report: dict[str, Any]) -> str:
    """``verdict.txt`` from a report's JSON: stages, the findings stage by stage, each
    distinct cause and fix once, then the notes and the verdict."""
    subject = report["subject"]
    lines = [f"upsampcheck {__version__}: {subject.get('kind')} {subject.get('name', '')}".rstrip()]
    if report.get("files") is not None:  # an audio report
        from .audio import render_file_lines

        lines.extend(render_file_lines(report))
    stages = report.get("stages", [])
    lines.extend(stage_rows(stages))
    where = None
    told: dict[tuple[str, str], str] = {}
    for entry in summary_entries(report):
        f = entry.first
        if entry.stages != where:
            where = entry.stages
            lines.extend(wrap(f"{entry.where()}:"))
        lines.append(f"  [{f['severity'].upper():4}] {f['check']:9} {entry.message()}")
        if f["severity"] in ("fail", "warn"):
            key = entry.cause()
            if key in told:
                lines.append(f"         cause and fix: as for {told[key]} above")
                continue
            told[key] = f"{f['check']} on {entry.label()}"
            lines.append(f"         cause: {key[0]}")
            lines.append(f"         fix:   {key[1]}")
    lines.extend(f"note: {note}" for note in note_lines(report))
    lines.append(f"verdict: {report['verdict'].upper()} ({verdict_counts(report)})")
    return "\n".join(lines) + "\n"
