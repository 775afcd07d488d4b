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

from ..errors import UsageError
from ..report.findings import Report, by_stage, render_text
from ..units import hz
from .html import write_html
from .render import FigureRenderer

REPORT_FILES = ("report.json", "verdict.txt")


def check_out_dir(out: Path) -> Path:
    """Refuse an ``--out`` that is a file, or a folder holding anything but an earlier report
    (it would be replaced). Called before any work, so a bad ``--out`` leaves nothing behind."""
    out = out.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    ours = (out / "report.json").is_file() or (out / "trend.json").is_file()
    if out.is_dir() and any(out.iterdir()) and not ours:
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
            write_html(staging, report, data)  # report.html and audio/*.wav (outputs/html.py)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def print_summary(data: dict[str, Any], out: Path | None) -> None:
    """The findings as a rich table, why and what to change for each failure or warning, and
    the one-line verdict, on stdout."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    styles = {"fail": "bold red", "warn": "yellow", "info": "cyan", "pass": "green"}
    subject = data["subject"]
    table = Table(title=f"upsampcheck: {subject.get('kind')} {subject.get('name', '')}")
    for column in ("", "check", "stage", "Hz", "dB", "finding"):
        table.add_column(column, overflow="fold")
    findings = by_stage(data)
    for f in findings:
        table.add_row(
            f"[{styles[f['severity']]}]{f['severity']}[/]",
            f["check"],
            f["stage"],
            "" if f["freq_hz"] is None else hz(f["freq_hz"]),
            "" if f["level_db"] is None else f"{f['level_db']:.1f}",
            escape(f["message"]),
        )
    console = Console()
    console.print(table)
    told: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        if f["severity"] in ("fail", "warn") and f["cause"]:
            told.setdefault((f["cause"], f["fix"]), []).append(f"{f['check']} ({f['stage']})")
    for (cause, fix), where in told.items():  # each distinct cause and fix once
        console.print(f"[bold]{', '.join(where)}[/]: {escape(cause)}")
        if fix:
            console.print(f"  [bold]fix:[/] {escape(fix)}")
    for note in data.get("notes", []):
        console.print(f"[dim]note: {escape(note)}[/]")
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
            from ..report.baseline import read_baseline

            self._baseline = read_baseline(self.baseline)
        if self.write_baseline is not None and self.write_baseline.is_dir():
            raise UsageError(f"--write-baseline {self.write_baseline}: is a folder, not a file")

    def gate(self, report: Report) -> dict[str, Any]:
        """The report's JSON, with the baseline applied when one was given."""
        data = report.to_json()
        if self._baseline is not None:
            from ..report.baseline import apply_baseline

            data = apply_baseline(data, self._baseline, self.tolerance_db)
        return data

    def exit_code(self, data: dict[str, Any]) -> int:
        return 0 if self.exit_zero else int(data["exit_code"])

    def deliver(self, report: Report) -> int:
        """Gate, write, print; returns the exit code."""
        data = self.gate(report)
        write_report_folder(report, data, self.out, figures=self.plots, renderer=self.renderer)
        if self.write_baseline is not None:
            from ..report.baseline import write_baseline

            write_baseline(report.to_json(), self.write_baseline)
        self.emit([data], [self.out])
        return self.exit_code(data)

    def emit(self, reports: list[dict[str, Any]], folders: list[Path]) -> None:
        """Print the reports in the chosen format (several: one document where the format
        allows, i.e. a JSON list and one JUnit document)."""
        if self.format == "json":
            payload = reports[0] if len(reports) == 1 else reports
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
            return
        if self.format == "junit":
            from .formats import to_junit

            sys.stdout.write(merge_junit([to_junit(data) for data in reports]) + "\n")
            return
        from .formats import github_actions, to_github, write_step_summary

        for data, folder in zip(reports, folders, strict=True):
            if self.format == "text":
                print_summary(data, folder)
            if self.format == "github" or github_actions():
                png = str(folder / "summary.png") if self.plots else None
                commands, markdown = to_github(data, png)
                if commands:
                    sys.stdout.write(commands if commands.endswith("\n") else commands + "\n")
                write_step_summary(markdown)

    def deliver_series(self, entries: list[dict[str, Any]]) -> int:
        """Several checkpoints: one report folder each plus ``trend.json`` / ``trend.png``, all
        under ``out`` and written together (a staging folder renamed at the end).

        ``entries``: ``{"name", "checkpoint", "step", "report": Report}`` in trend order.
        """
        from ..report.trend import folder_names, trend_data

        out = check_out_dir(self.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            names = folder_names([Path(e["checkpoint"]) for e in entries])
            gated = []
            for entry, folder in zip(entries, names, strict=True):
                data = self.gate(entry["report"])
                write_report_folder(
                    entry["report"], data, staging / folder, self.plots, self.renderer
                )
                gated.append({**entry, "folder": folder, "report": data})
            trend = trend_data(gated)
            (staging / "trend.json").write_text(json.dumps(trend, indent=2) + "\n")
            if self.plots:
                from .plotting import plot_trend

                plot_trend(trend, staging / "trend.png")
            replace_folder(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.emit([g["report"] for g in gated], [out / name for name in names])
        if self.format == "text":
            print_trend(trend, out)
        return max(self.exit_code(g["report"]) for g in gated)


def replace_folder(staging: Path, out: Path) -> None:
    """Move a finished ``staging`` folder to ``out``, replacing an earlier one in one rename."""
    os.chmod(staging, 0o755)
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def merge_junit(documents: list[str]) -> str:
    """One ``<testsuites>`` holding every document's test suites."""
    import xml.etree.ElementTree as ET

    roots = [ET.fromstring(doc) for doc in documents]
    merged = roots[0]
    for root in roots[1:]:
        merged.extend(list(root))
    for key in ("tests", "failures", "errors"):  # junit-10.xsd: no "skipped" up here
        total = sum(int(suite.get(key, 0)) for suite in merged.findall("testsuite"))
        merged.set(key, str(total))
    return ET.tostring(merged, encoding="unicode")


def print_trend(trend: dict[str, Any], out: Path) -> None:
    """The trend as a table: checkpoints down, stages across (loudest line in dB)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"loudest tonal line per stage (dB), ordered by {trend['ordered_by']}")
    table.add_column("checkpoint")
    table.add_column("step")
    for stage in trend["stages"]:
        table.add_column(stage, justify="right")
    table.add_column("verdict")
    for row in trend["checkpoints"]:
        levels = [row["worst_line_db"].get(stage) for stage in trend["stages"]]
        cells = ["-" if v is None else f"{v:.1f}" for v in levels]
        step = "" if row["step"] is None else str(row["step"])
        table.add_row(row["name"], step, *cells, row["verdict"])
    console = Console()
    console.print(table)
    console.print(f"trend in {out / 'trend.json'}")
