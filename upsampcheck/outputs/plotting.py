"""Figures: spectrograms per stage and probe, and the summary grid (matplotlib Figure API, Agg).

No pyplot: every figure is a :class:`matplotlib.figure.Figure` rendered by the Agg canvas, so
nothing touches global state or needs a display. The input is the plain payload of
:meth:`upsampcheck.report.findings.Report.figure_data` (numpy arrays already in dB relative to each
stage's signal level), so this module needs neither torch nor the analysis code and can run
in a separate process. All panels share one dB scale, so a line's colour reads as its level.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

DB_RANGE = (-140.0, 20.0)
SUMMARY_PROBES = ("noise", "silence", "dc", "tone")


def stage_label(stage: dict[str, Any]) -> str:
    index, name, factor, fs_in = (stage[k] for k in ("index", "name", "factor", "fs_in_hz"))
    return (
        f"stage {index} {name} (x{factor:g}, {fs_in:g} Hz in)"
        if name[0].isalpha()
        else f"stage {name} (x{factor:g}, {fs_in:g} Hz in)"
    )


def file_stem(stage: dict[str, Any]) -> str:
    """``stage<index>_<name>`` with anything but letters, digits, ``.``, ``_``, ``-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"stage{stage['index']}_{stage['name']}").strip("_")


def plot_spectrograms(stage: dict[str, Any], folder: Path) -> list[str]:
    """One PNG per probe: the stage output's spectrogram, the stage's predicted lines dashed.

    Axes, ticks and colour bar are drawn once; each probe then only blits its image, lines and
    title onto that background (drawing ticks is most of matplotlib's cost)."""
    fig = Figure(figsize=(6, 3.2), dpi=72)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.15, top=0.9)
    ax = fig.add_subplot()
    first = next(iter(stage["spectrograms"].values()))
    image = ax.imshow(
        np.zeros_like(first),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=DB_RANGE[0],
        vmax=DB_RANGE[1],
        interpolation="nearest",
        extent=(0, first.shape[1], 0, stage["fs_out_hz"] / 2),
    )
    marks = [ax.axhline(f, color="cyan", lw=0.6, ls="--", alpha=0.7) for f in stage["grid_hz"]]
    ax.set(xlabel="frame", ylabel="Hz")
    fig.colorbar(image, ax=ax, label="dB re signal level", pad=0.02)
    canvas = FigureCanvasAgg(fig)
    for artist in (image, *marks):
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    names = []
    for probe, level_db in stage["spectrograms"].items():
        canvas.restore_region(background)
        image.set_data(level_db)
        ax.set_title(f"{stage_label(stage)}: {probe}", fontsize=10)
        for artist in (image, *marks, ax.title):
            ax.draw_artist(artist)
        name = f"{file_stem(stage)}_{probe}.png"
        Image.fromarray(np.asarray(canvas.buffer_rgba())).save(folder / name, compress_level=1)
        names.append(name)
    return names


def plot_summary(data: dict[str, Any], path: Path) -> None:
    """Rows = stages, columns = probes' averaged spectra (+ the response): detected lines
    circled, the stage's predicted line grid dotted, one dB scale for all panels."""
    stages = data["stages"]
    cols = len(SUMMARY_PROBES) + 1
    height = 2.2 * len(stages) + 0.8
    fig = Figure(figsize=(2.8 * cols, height), dpi=72)
    fig.subplots_adjust(
        left=0.06, right=0.99, bottom=0.35 / height, top=1 - 0.7 / height, wspace=0.25, hspace=0.35
    )
    axes = fig.subplots(len(stages), cols, squeeze=False)
    for row, stage in enumerate(stages):
        for col, probe in enumerate(SUMMARY_PROBES):
            ax = axes[row, col]
            ax.plot(stage["freqs_hz"], stage["spectra"][probe], lw=0.7, color="C0")
            for freq in stage["grid_hz"]:
                ax.axvline(freq, color="0.6", lw=0.5, ls=":")
            for freq, level, _ in (ln for ln in stage["lines"] if ln[2] == probe):
                ax.plot(freq, level, "o", mfc="none", color="C3", ms=6)
                ax.annotate(
                    f"{freq:.0f} Hz\n{level:.0f} dB",
                    (freq, level),
                    fontsize=6,
                    color="C3",
                    xytext=(3, 3),
                    textcoords="offset points",
                )
            ax.set_ylim(*DB_RANGE)
            ax.set_xlim(0, stage["fs_out_hz"] / 2)
            if row == 0:
                ax.set_title(probe, fontsize=9)
            if col == 0:
                ax.set_ylabel(f"stage {stage['index']} {stage['name']}\ndB re signal", fontsize=8)
            ax.tick_params(labelsize=7)
        ax = axes[row, -1]
        fractions, response = stage["response"]
        ax.plot(fractions, response, color="C2")
        ax.axhline(-3, color="0.6", lw=0.5, ls=":")
        ax.set(xlim=(0, 1), ylim=(min(-12.0, float(np.min(response)) - 1), 3))
        if row == 0:
            ax.set_title("response (x: fraction of fs_in/2)", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"upsampcheck: {data['title']} - {data['verdict'].upper()}", fontsize=11)
    FigureCanvasAgg(fig)
    fig.savefig(path, pil_kwargs={"compress_level": 1})


def write_figures(data: dict[str, Any], folder: Path) -> list[str]:
    """Every figure of a report's payload into ``folder``; returns the file names written."""
    names = []
    if not data["stages"]:  # nothing measured (no upsampling stage): no figure to draw
        return names
    for stage in data["stages"]:
        names += plot_spectrograms(stage, folder)
    plot_summary(data, folder / "summary.png")
    return [*names, "summary.png"]


def plot_trend(trend: dict[str, Any], path: Path) -> None:
    """The model output's loudest line across checkpoints (thick), each stage's (thin), and
    the tonal thresholds, labelled; a checkpoint without any line is marked at the bottom."""
    rows = trend["checkpoints"]
    by_step = trend["ordered_by"] == "step"
    x = [row["step"] if by_step else i for i, row in enumerate(rows)]
    fig = Figure(figsize=(8, 4.2), dpi=110)
    fig.subplots_adjust(left=0.1, right=0.72, bottom=0.2, top=0.88)
    ax = fig.add_subplot()
    series = [("output", [row["output_line_db"] for row in rows], dict(lw=2.4, ms=6, color="k"))]
    for i, stage in enumerate(trend["stages"]):
        levels = [row["worst_line_db"].get(stage) for row in rows]
        series.append((stage, levels, dict(lw=1, ms=3, color=f"C{i % 10}", alpha=0.8)))
    values = [v for _, levels, _ in series for v in levels if v is not None]
    for key, colour in (("tonal_fail_db", "C3"), ("tonal_warn_db", "C1")):
        if trend.get(key) is not None:
            values.append(trend[key])
            word = "fail" if key == "tonal_fail_db" else "warn"
            ax.axhline(
                trend[key], color=colour, ls="--", lw=1, label=f"{word} above {trend[key]:g} dB"
            )
    bottom = min(values, default=-60.0) - 10
    top = max(values, default=0.0) + 5
    for label, levels, style in series:
        ys = [np.nan if v is None else v for v in levels]
        ax.plot(
            x, ys, "o-", label=f"{label} (loudest line)" if label == "output" else label, **style
        )
    empty = [xi for xi, row in zip(x, rows, strict=True) if row["output_line_db"] is None]
    if empty:
        ax.plot(empty, [bottom + 2] * len(empty), "v", color="C2", label="no output line")
    if not by_step:
        ax.set_xticks(x, [row["name"] for row in rows], rotation=30, fontsize=7, ha="right")
    ax.set(
        xlabel="training step" if by_step else "checkpoint",
        ylabel="loudest tonal line (dB re signal)",
        ylim=(bottom, top),
        title="upsampcheck: tonal lines across training",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    FigureCanvasAgg(fig)
    fig.savefig(path, pil_kwargs={"compress_level": 1})
