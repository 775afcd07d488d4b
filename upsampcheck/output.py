"""Write a report folder completely or not at all, and render the terminal summary."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    report: Report,
    data: dict[str, Any],
    out: Path,
    figures: bool = True,
    renderer: FigureRenderer | None = None,
) -> Path:
    """Write ``report.json`` (``data``, the report's JSON after any baseline gating),
    ``verdict.txt`` and the figures into ``out``, atomically.

    Everything goes to a temporary sibling folder first, which then replaces ``out`` with one
    rename; on any error the temporary folder is removed and ``out`` is left as it was.
    """
    out = check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "report.json").write_text(json.dumps(data, indent=2) + "\n")
        (staging / "verdict.txt").write_text(render_text(data))
        if figures:
            payload = {**report.figure_data(), "verdict": data["verdict"]}
            (renderer or FigureRenderer(background=False)).render(payload, staging)
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


def print_summary(data: dict[str, Any], out: Path | None) -> None:
    """The findings as a rich table and the one-line verdict, on stdout."""
    from rich.console import Console
    from rich.table import Table

    styles = {"fail": "bold red", "warn": "yellow", "info": "cyan", "pass": "green"}
    subject = data["subject"]
    table = Table(title=f"upsampcheck: {subject.get('kind')} {subject.get('name', '')}")
    for column in ("", "check", "stage", "Hz", "dB", "finding"):
        table.add_column(column, overflow="fold")
    for f in data["findings"]:
        fix = f"\n[dim]fix: {f['fix']}[/]" if f["severity"] in ("fail", "warn") and f["fix"] else ""
        table.add_row(
            f"[{styles[f['severity']]}]{f['severity']}[/]",
            f["check"],
            f["stage"],
            "" if f["freq_hz"] is None else f"{f['freq_hz']:.0f}",
            "" if f["level_db"] is None else f"{f['level_db']:.1f}",
            f["message"] + fix,
        )
    console = Console()
    console.print(table)
    for note in data.get("notes", []):
        console.print(f"[dim]note: {note}[/]")
    where = f"; report in {out}" if out else ""
    verdict = data["verdict"]
    console.print(
        f"[{styles[verdict]}]verdict: {verdict.upper()}[/] (exit {data['exit_code']}){where}"
    )


@dataclass
class Delivery:
    """Everything that happens to a finished report: baseline gating, the report folder, what
    goes to stdout, the exit code. ``prepare`` validates the options before any work."""

    out: Path
    format: str = "text"
    plots: bool = True
    baseline: Path | None = None
    write_baseline: Path | None = None
    tolerance_db: float = 1.0
    exit_zero: bool = False
    renderer: FigureRenderer | None = None
    _baseline: dict[str, Any] | None = field(default=None, init=False)

    def prepare(self) -> None:
        """Refuse a bad ``--out``, an unreadable baseline or a negative tolerance, up front."""
        check_out_dir(self.out)
        if not math.isfinite(self.tolerance_db) or self.tolerance_db < 0:
            raise UsageError(
                f"--tolerance-db must be a non-negative number (got {self.tolerance_db})"
            )
        if self.baseline is not None:
            from .baseline import read_baseline

            self._baseline = read_baseline(self.baseline)
        if self.write_baseline is not None and self.write_baseline.is_dir():
            raise UsageError(f"--write-baseline {self.write_baseline}: is a folder, not a file")

    def deliver(self, report: Report) -> int:
        """Gate, write, print; returns the exit code."""
        data = report.to_json()
        if self._baseline is not None:
            from .baseline import apply_baseline

            data = apply_baseline(data, self._baseline, self.tolerance_db)
        write_report_folder(report, data, self.out, figures=self.plots, renderer=self.renderer)
        if self.write_baseline is not None:
            from .baseline import write_baseline

            write_baseline(report.to_json(), self.write_baseline)
        summary_png = str(self.out / "summary.png") if self.plots else None
        if self.format == "json":
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        elif self.format == "junit":
            from .formats import to_junit

            sys.stdout.write(to_junit(data) + "\n")
        else:
            from .formats import github_actions, to_github, write_step_summary

            if self.format == "text":
                print_summary(data, self.out)
            if self.format == "github" or github_actions():
                commands, markdown = to_github(data, summary_png)
                if commands:
                    sys.stdout.write(commands if commands.endswith("\n") else commands + "\n")
                write_step_summary(markdown)
        return 0 if self.exit_zero else int(data["exit_code"])
