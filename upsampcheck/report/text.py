"""``verdict.txt``: a report's JSON as text, stage by stage, each distinct cause and fix once."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..units import hz
from .findings import SEVERITIES


def by_stage(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings of a report's JSON, each stage's together in stage order (cross-stage
    findings with the stage they are about), then the output's, then the rest."""
    order = [st["name"] for st in report.get("stages", [])] + ["output"]
    rank = {name: i for i, name in enumerate(order)}
    return sorted(report["findings"], key=lambda f: rank.get(f["stage"], len(order)))


def render_text(report: dict[str, Any]) -> str:
    """``verdict.txt`` from a report's JSON: stages, the findings stage by stage, each
    distinct cause and fix once, then the verdict."""
    subject = report["subject"]
    lines = [f"upsampcheck {__version__}: {subject.get('kind')} {subject.get('name', '')}".rstrip()]
    if report.get("files") is not None:  # an audio report
        from .audio import render_file_lines

        lines.extend(render_file_lines(report))
    findings = by_stage(report)
    for st in report.get("stages", []):
        lines.append(
            f"{st['name']} ({st['kind']}, x{st['factor']:g}, "
            f"{hz(st['fs_in_hz'])} -> {hz(st['fs_out_hz'])} Hz)"
        )
    stage = None
    told: dict[tuple[str, str], str] = {}
    for f in findings:
        if f["stage"] != stage:
            stage = f["stage"]
            lines.append(f"{stage}:")
        lines.append(f"  [{f['severity'].upper():4}] {f['check']:9} {f['message']}")
        if f["severity"] in ("fail", "warn"):
            key = (f["cause"], f["fix"])
            if key in told:
                lines.append(f"         cause and fix: as for {told[key]} above")
                continue
            told[key] = f"{f['check']} on {f['stage']}"
            lines.append(f"         cause: {f['cause']}")
            lines.append(f"         fix:   {f['fix']}")
    lines.extend(f"note: {note}" for note in report.get("notes", []))
    counts = {s: sum(f["severity"] == s for f in report["findings"]) for s in SEVERITIES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append(f"verdict: {report['verdict'].upper()} ({summary})")
    return "\n".join(lines) + "\n"
