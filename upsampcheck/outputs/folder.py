"""Write a report folder completely or not at all, and render the terminal summary."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..phases import CLOCK, PHASES, phase
from ..report.findings import Report
from ..report.text import note_lines, render_text, summary_entries
from ..units import hz
from .html import write_html
from .json_text import json_text
from .render import FigureRenderer
from .safe_folder import OutFolder, write_marker


def fill_report_folder(
    report: Report,
    data: dict[str, Any],
    folder: Path,
    figures: bool = True,
    renderer: FigureRenderer | None = None,
    timed: bool = False,
) -> dict[str, Any]:
    """Write ``report.json`` (``data``, the report's JSON after any baseline gating),
    ``verdict.txt``, the figures, ``report.html`` and ``audio/*.wav`` into the new folder
    ``folder`` (a staging folder), the JSON while the figure workers draw. With ``timed``,
    report.json is written last, with ``timings``: the run's phases up to then
    (:mod:`~upsampcheck.phases`). Returns the JSON written."""
    folder.mkdir(exist_ok=True)
    if figures:  # drawn by the figure workers while this process writes the other files
        renderer = renderer or FigureRenderer(background=False)
        renderer.start({**report.figure_data(), "verdict": data["verdict"]}, folder)
    if not timed:
        (folder / "report.json").write_text(json_text(data) + "\n")
    (folder / "verdict.txt").write_text(render_text(data))
    if figures:
        with phase("figures"):
            renderer.finish()
        with phase("page"):
            write_html(folder, report, data)  # report.html and audio/*.wav (outputs/html.py)
    if timed:
        data = {**data, "timings": CLOCK.account()}
        (folder / "report.json").write_text(json_text(data) + "\n")
    return data


def write_report_folder(
    report: Report,
    data: dict[str, Any],
    out: Path,
    figures: bool = True,
    renderer: FigureRenderer | None = None,
) -> Path:
    """Write a report folder at ``out`` completely or not at all (:mod:`.safe_folder`)."""
    folder = OutFolder(out).check()
    folder.lock()
    wrote = False
    try:
        with folder.staged() as staging:
            fill_report_folder(report, data, staging, figures, renderer)
        wrote = True
    finally:
        folder.release(wrote)
    return folder.out


STAGE_SHARE = 5
"""The summary table's stage column folds names longer than a fifth of the terminal (at
least :data:`STAGE_MIN` characters): the finding gets the rest."""
STAGE_MIN = 14


INFO_ROWS = 3
"""More ``info`` rows than this are one row in the terminal table (each stays in the files)."""


def print_summary(data: dict[str, Any], out: Path | None) -> None:
    """The findings as a rich table, why and what to change for each failure or warning, and
    the one-line verdict, on stdout. Findings that differ only by stage and numbers are one
    row ("N stages", ranges in the finding, the worst member's Hz and dB); the stages they are
    on are named with their cause (:func:`~upsampcheck.report.text.summary_entries`)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    styles = {"fail": "bold red", "warn": "yellow", "info": "cyan", "pass": "green"}
    subject = data["subject"]
    table = Table(title=f"upsampcheck: {subject.get('kind')} {subject.get('name', '')}")
    for column in ("", "check"):
        table.add_column(column, no_wrap=True)
    console = Console()
    stage_width = max(STAGE_MIN, console.width // STAGE_SHARE)
    noun = "file" if data.get("files") is not None else "stage"  # audio reports: files
    table.add_column(noun, overflow="fold", max_width=stage_width)
    table.add_column("Hz", no_wrap=True)
    table.add_column("dB", no_wrap=True)
    table.add_column("finding", overflow="fold")
    entries = summary_entries(data)
    infos = [e for e in entries if e.first["severity"] == "info"]
    folded = infos if len(infos) > INFO_ROWS else []
    for entry in entries:
        if entry in folded:
            continue
        f = entry.first
        worst = entry.worst()
        shown = worst or f  # a group's Hz and dB: its worst member's, named under its count
        stage = f"{len(entry.findings)} {noun}s" if entry.grouped else f["stage"]
        table.add_row(
            f"[{styles[f['severity']]}]{f['severity']}[/]",
            f["check"],
            escape(stage if worst is None else f"{stage}, worst: {worst['stage']}"),
            "" if shown["freq_hz"] is None else hz(shown["freq_hz"]),
            "" if shown["level_db"] is None else f"{shown['level_db']:.1f}",
            escape(entry.message(name_worst=False)),
        )
    if folded:
        count = sum(len(e.findings) for e in folded)
        checks = ", ".join(dict.fromkeys(e.first["check"] for e in folded))
        where = "in verdict.txt and report.json" if out else "in --format json"
        table.add_row(
            f"[{styles['info']}]info[/]", checks, "", "", "", f"{count} findings ({where})"
        )
    console.print(table)
    told: dict[str, dict[str, list[str]]] = {}  # {fix: {cause: [where]}}
    for entry in entries:
        f = entry.first
        if f["severity"] in ("fail", "warn") and f["cause"]:
            cause, fix = entry.cause()
            where = entry.where() if entry.grouped else f["stage"]
            told.setdefault(fix, {}).setdefault(cause, []).append(f"{f['check']} ({where})")
    for fix, causes in told.items():  # each distinct cause once, then its fix once
        for cause, where in causes.items():
            console.print(f"[bold]{escape(', '.join(where))}[/]: {escape(cause)}")
        if fix:
            console.print(f"  [bold]fix:[/] {escape(fix)}")
    for note in note_lines(data):
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
    verbosity: int = 0
    """-1: the verdict line only (``--quiet``); 1: also the time of each phase of the run, on
    stderr and under ``timings`` in report.json (``--verbose``)."""
    _baseline: dict[str, Any] | None = field(default=None, init=False)
    _folder: OutFolder | None = field(default=None, init=False)
    _wrote: bool = field(default=False, init=False)

    def prepare(self) -> None:
        """Refuse a bad ``--out``, an unreadable baseline or a negative tolerance, and lock
        ``--out`` for the run, before any work."""
        if self.write_baseline is not None:
            from ..report.baseline import check_baseline_target

            check_baseline_target(self.write_baseline)
        if not math.isfinite(self.tolerance_db) or self.tolerance_db < 0:
            raise UsageError(
                f"--tolerance-db must be a non-negative number (got {self.tolerance_db})"
            )
        if self.baseline is not None:
            from ..report.baseline import read_baseline

            self._baseline = read_baseline(self.baseline)
        if self.format in ("text", "github"):
            from .formats import check_step_summary

            check_step_summary()
        self._folder = OutFolder(self.out).check()
        self._folder.lock()

    def close(self) -> None:
        """Release ``--out``'s lock (and any parent folders made for a run that wrote none)."""
        if self._folder is not None:
            self._folder.release(self._wrote)
            self._folder = None

    def __enter__(self) -> Delivery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _staged(self):
        """The locked ``--out``'s staging folder (checked and locked now if not yet)."""
        if self._folder is None:
            self._folder = OutFolder(self.out).check()
            self._folder.lock()
        return self._folder.staged()

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
        baseline = None
        try:
            with phase("write"), self._staged() as staging:
                data = fill_report_folder(
                    report, data, staging, self.plots, self.renderer, self.verbosity > 0
                )
                if self.write_baseline is not None:  # written now, published after the swap
                    from ..report.baseline import make_baseline, stage_baseline

                    baseline = stage_baseline(make_baseline(report.to_json()), self.write_baseline)
            self._wrote = True
            if baseline is not None:
                os.replace(baseline, self.write_baseline)
                baseline = None
        finally:
            if baseline is not None:
                baseline.unlink(missing_ok=True)
        self.emit([data], [self.out])
        self.print_timings()
        return self.exit_code(data)

    def emit(self, reports: list[dict[str, Any]], folders: list[Path]) -> None:
        """Print the reports in the chosen format (several: one document where the format
        allows, i.e. a JSON list and one JUnit document)."""
        if self.format == "json":
            payload = reports[0] if len(reports) == 1 else reports
            sys.stdout.write(json_text(payload) + "\n")
            return
        if self.format == "junit":
            from .formats import to_junit

            sys.stdout.write(merge_junit([to_junit(data) for data in reports]) + "\n")
            return
        from .formats import github_actions, to_github, write_step_summary

        for data, folder in zip(reports, folders, strict=True):
            if self.format == "text" and self.verbosity < 0:
                where = f"; report in {folder}" if folder else ""
                sys.stdout.write(
                    f"verdict: {data['verdict'].upper()} (exit {data['exit_code']}){where}\n"
                )
            elif self.format == "text":
                print_summary(data, folder)
            if self.format == "github" or github_actions():
                drawn = data.get("stages") or data.get("files")  # a model's or an audio report
                png = str(folder / "summary.png") if self.plots and drawn else None
                commands, markdown = to_github(data, png)
                if commands:
                    sys.stdout.write(commands if commands.endswith("\n") else commands + "\n")
                write_step_summary(markdown)

    def print_timings(self) -> None:
        """``--verbose``: the time of each phase of the run (:mod:`~upsampcheck.phases`) and
        in all, on stderr."""
        if self.verbosity <= 0:
            return
        account = CLOCK.account()
        for name in (*PHASES, "other"):
            if name in account:
                sys.stderr.write(f"upsampcheck: time: {name}: {account[name]:.2f} s\n")
        sys.stderr.write(f"upsampcheck: time: in all: {account['total']:.2f} s\n")
        from ..busy import PASSIVE_SET

        if PASSIVE_SET["done"]:
            sys.stderr.write(
                "upsampcheck: note: other tasks were running at the start: torch's threads "
                "waited passively between parallel regions (OMP_WAIT_POLICY=PASSIVE)\n"
            )

    def deliver_series(self, entries: list[dict[str, Any]]) -> int:
        """Several checkpoints: one report folder each plus ``trend.json`` / ``trend.png``, all
        under ``out`` and written together (a staging folder renamed at the end).

        ``entries``: ``{"name", "checkpoint", "step", "report": Report}`` in trend order.
        """
        from ..report.trend import folder_names, trend_data

        out = self.out
        names = folder_names([Path(e["checkpoint"]) for e in entries])
        gated = []
        with self._staged() as staging:
            for entry, folder in zip(entries, names, strict=True):
                data = self.gate(entry["report"])
                fill_report_folder(
                    entry["report"], data, staging / folder, self.plots, self.renderer
                )
                write_marker(staging / folder)
                gated.append({**entry, "folder": folder, "report": data})
            trend = trend_data(gated)
            write_trend(staging, trend, self.plots)
        self._wrote = True
        self.emit([g["report"] for g in gated], [out / name for name in names])
        if self.format == "text" and self.verbosity >= 0:
            print_trend(trend, out)
        self.print_timings()
        return max(self.exit_code(g["report"]) for g in gated)


def deliver_trend(delivery: Delivery, trend: dict[str, Any]) -> int:
    """``upsampcheck trend``: write the trend folder, print it; the exit code of the worst
    report (as a multi-checkpoint run)."""
    with delivery._staged() as staging:
        write_trend(staging, trend, delivery.plots)
    delivery._wrote = True
    if delivery.format == "json":
        sys.stdout.write(json_text(trend) + "\n")
    else:
        print_trend(trend, delivery.out)
    return 0 if delivery.exit_zero else int(trend["exit_code"])


def write_trend(folder: Path, trend: dict[str, Any], plots: bool) -> None:
    """``trend.json`` (and ``trend.png``) into the staging ``folder``."""
    (folder / "trend.json").write_text(json_text(trend) + "\n")
    if plots:
        from .plotting import plot_trend

        plot_trend(trend, folder / "trend.png")


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
    """The trend as a table: checkpoints down; the output's loudest line, each stage's (dB),
    the failing findings and the verdict across."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"loudest tonal line (dB re signal), ordered by {escape(str(trend['ordered_by']))}"
    )
    for column in ("checkpoint", "step", "output", *trend["stages"], "failing", "verdict"):
        table.add_column(escape(column), justify="left" if column == "checkpoint" else "right")
    for row in trend["checkpoints"]:
        levels = [row["output_line_db"], *(row["worst_line_db"].get(s) for s in trend["stages"])]
        cells = ["-" if v is None else f"{v:.1f}" for v in levels]
        step = "" if row["step"] is None else str(row["step"])
        table.add_row(escape(row["name"]), step, *cells, str(row["failing"]), row["verdict"])
    console = Console()
    console.print(table)
    for note in trend.get("notes") or []:
        console.print(f"[dim]note: {escape(note)}[/]")
    console.print(f"trend in {escape(str(out / 'trend.json'))}")
