"""Write a report folder completely or not at all, and render the terminal summary."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import UsageError
from .render import FigureRenderer
from .report import Report, render_text

REPORT_FILES = ("report.json", "verdict.txt")


def check_out_dir(out: Path) -> Path:
    """Refuse an ``--out`` that is a file, or a folder holding anything but an earlier report
    (it would be replaced). Called before any work, so a bad ``--out`` leaves nothing behind."""
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.json").is_file():
        raise UsageError(
            f"--out {out}: folder is not empty and holds no earlier report; pick another"
        )
    return out


def write_report_folder(
    report: Report, out: Path, figures: bool = True, renderer: FigureRenderer | None = None
) -> Path:
    """Write ``report.json``, ``verdict.txt`` and the figures into ``out``, atomically.

    Everything goes to a temporary sibling folder first, which then replaces ``out`` with one
    rename; on any error the temporary folder is removed and ``out`` is left as it was.
    """
    out = check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
        (staging / "verdict.txt").write_text(render_text(report))
        if figures:
            (renderer or FigureRenderer(background=False)).render(report.figure_data(), staging)
        os.chmod(staging, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def print_summary(report: Report, out: Path | None) -> None:
    """The findings as a rich table and the one-line verdict, on stdout."""
    from rich.console import Console
    from rich.table import Table

    styles = {"fail": "bold red", "warn": "yellow", "info": "cyan", "pass": "green"}
    table = Table(
        title=f"upsampcheck: {report.subject.get('kind')} {report.subject.get('name', '')}"
    )
    for column in ("severity", "check", "stage", "freq (Hz)", "level (dB)", "finding"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        table.add_row(
            f"[{styles[f.severity]}]{f.severity}[/]",
            f.check,
            f.stage,
            "" if f.freq_hz is None else f"{f.freq_hz:.1f}",
            "" if f.level_db is None else f"{f.level_db:.1f}",
            f.message + (f"\n[dim]fix: {f.fix}[/]" if f.severity in ("fail", "warn") else ""),
        )
    console = Console()
    console.print(table)
    for note in report.notes:
        console.print(f"[dim]note: {note}[/]")
    where = f"; report in {out}" if out else ""
    style = styles[report.verdict]
    console.print(f"[{style}]verdict: {report.verdict.upper()}[/] (exit {report.exit_code}){where}")
