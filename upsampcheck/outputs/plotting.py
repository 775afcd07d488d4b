"""Figures: spectrograms per stage and probe, and the summary grid (matplotlib Figure API, Agg).

No pyplot: every figure is a :class:`matplotlib.figure.Figure` rendered by the Agg canvas, so
nothing touches global state or needs a display. The input is the plain payload of
:meth:`upsampcheck.report.findings.Report.figure_data` (numpy arrays already in dB relative to each
stage's signal level), so this module needs neither torch nor the analysis code and can run
in a separate process. Keys it does not know are ignored; the optional ones (``line_origins``,
``dc_db``, ``span_s``, ``same_as``) add colour by origin, the DC marker, time in seconds and
the grouping of identical stages.

Reading aids: time in seconds, frequency in Hz or kHz, a legend for every dashed/dotted line
and marker, labels for the :data:`LABELLED` strongest lines of a panel only (the rest are in
the report's tables), lines coloured by the stage that introduced them, a dB axis that grows
to fit the loudest line, autoscaled response panels, 150 dpi.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from ..units import hz
from .names import SUMMARY_PNG, figure_jobs, file_stems, spectrogram_png

DPI = 150
FLOOR_DB = -140.0
"""Bottom of every dB axis; the top grows with the loudest line (at least +20 dB)."""
SUMMARY_PROBES = ("noise", "silence", "dc", "tone")
LABELLED = 3
NYQUIST_MARGIN = 1.03
"""Frequency axes end 3 % above the Nyquist, so a line there is not hidden by the frame."""
"""Lines labelled per panel (the loudest); every line is listed in the report's tables."""
CMAP = "magma"
STAGE_COLOURS = ("#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def save_png(canvas: FigureCanvasAgg, path: Path) -> None:
    """The canvas as drawn, as an 8-bit RGB PNG (the figures are opaque): rows unfiltered,
    deflated at zlib level 1. About a third of Pillow's time at its fastest level (which tries
    a filter per row), for a file no larger on these flat-coloured figures."""
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    height, width, _ = rgb.shape
    raw = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # filter byte 0: none
    raw[:, 1:] = rgb.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        for kind, body in ((b"IHDR", header), (b"IDAT", zlib.compress(raw, 1)), (b"IEND", b"")):
            fh.write(struct.pack(">I", len(body)) + kind + body)
            fh.write(struct.pack(">I", zlib.crc32(kind + body)))


def figure_png(fig: Figure, path: Path) -> None:
    """Draw ``fig`` on an Agg canvas and write it with :func:`save_png`."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    save_png(canvas, path)


def stage_label(stage: dict[str, Any]) -> str:
    """``2:transposed (x2, 8000 Hz in)``: the stage's name, as everywhere in the report."""
    return f"{stage['name']} (x{stage['factor']:g}, {hz(stage['fs_in_hz'])} Hz in)"


def hz_formatter(top_hz: float) -> FuncFormatter:
    """Tick labels in kHz when the axis reaches 2 kHz, else in Hz."""
    if top_hz >= 2000:
        return FuncFormatter(lambda v, _: f"{v / 1000:g}")
    return FuncFormatter(lambda v, _: f"{v:g}")


def hz_unit(top_hz: float) -> str:
    return "kHz" if top_hz >= 2000 else "Hz"


def db_top(stages: list[dict[str, Any]]) -> float:
    """The top of the dB axis: 10 dB above the loudest line or spectrum bin, at least +20."""
    loudest = 20.0
    for stage in stages:
        levels = [ln[1] for ln in stage["lines"]]
        levels += [float(np.max(s)) for s in stage["spectra"].values() if len(s)]
        if stage.get("dc_db") is not None:
            levels.append(stage["dc_db"])
        loudest = max(loudest, *levels) if levels else loudest
    return 10 * math.ceil((loudest + 10) / 10)


def origin_colours(stages: list[dict[str, Any]]) -> dict[str, str]:
    """One colour per stage name (in order), used for the lines that stage introduced."""
    names = [s["name"] for s in stages]
    for stage in stages:
        names += [o for o in stage.get("line_origins", []) if o not in names]
    return {name: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, name in enumerate(names)}


def lines_of(stage: dict[str, Any], probe: str) -> list[tuple[float, float, str]]:
    """``(freq, level, origin)`` of the stage's lines on ``probe``, loudest first."""
    origins = stage.get("line_origins") or [stage["name"]] * len(stage["lines"])
    found = [
        (line[0], line[1], origin)
        for line, origin in zip(stage["lines"], origins, strict=False)
        if line[2] == probe
    ]
    return sorted(found, key=lambda ln: -ln[1])


def plot_spectrograms(stage: dict[str, Any], folder: Path, stem: str, top_db: float) -> list[str]:
    """One PNG per probe: the stage output's spectrogram (time in s), the stage's predicted
    lines dashed and named in the legend.

    Axes, ticks, colour bar and legend are drawn once; each probe then only paints its image
    (coloured here, :func:`paint_image`) and title onto that background (drawing ticks is
    most of matplotlib's cost)."""
    fig = Figure(figsize=(7.2, 3.3), dpi=DPI)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.15, top=0.89)
    ax = fig.add_subplot()
    first = next(iter(stage["spectrograms"].values()))
    span = stage.get("span_s") or first.shape[1]
    nyquist = stage["fs_out_hz"] / 2
    image = ax.imshow(  # sets the limits and feeds the colour bar; never drawn itself
        np.zeros_like(first),
        origin="lower",
        aspect="auto",
        cmap=CMAP,
        vmin=FLOOR_DB,
        vmax=top_db,
        interpolation="nearest",
        extent=(0, span, 0, nyquist),
    )
    ax.set_ylim(0, NYQUIST_MARGIN * nyquist)  # a line at the Nyquist is drawn, not the border
    marks = [ax.axhline(f, color="cyan", lw=0.7, ls="--", alpha=0.8) for f in stage["grid_hz"]]
    ax.yaxis.set_major_formatter(hz_formatter(nyquist))
    ax.set(xlabel="time (s)" if stage.get("span_s") else "frame", ylabel=hz_unit(nyquist))
    fig.colorbar(image, ax=ax, label="dB re signal level", pad=0.02)
    if marks:
        grid = f"predicted lines: multiples of {hz(stage['fs_in_hz'])} Hz"
        ax.legend([marks[0]], [grid], loc="upper right", fontsize=7, framealpha=0.8)
    canvas = FigureCanvasAgg(fig)
    for artist in (image, *marks):
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    renderer = canvas.get_renderer()
    lut = (image.cmap(np.arange(image.cmap.N)) * 255).round().astype(np.uint8)
    x0, y0, width, height = ax.bbox.bounds
    image_box = (x0, y0, width, height / NYQUIST_MARGIN)  # 0 .. Nyquist; the margin stays white
    names = []
    for probe, level_db in stage["spectrograms"].items():
        canvas.restore_region(background)
        paint_image(renderer, image_box, level_db, (FLOOR_DB, top_db), lut)
        ax.set_title(f"{stage_label(stage)}: {probe} probe", fontsize=10)
        for artist in (*marks, ax.title):
            ax.draw_artist(artist)
        if ax.get_legend() is not None:
            ax.draw_artist(ax.get_legend())
        name = spectrogram_png(stem, probe)
        save_png(canvas, folder / name)
        names.append(name)
    return names


def paint_image(
    renderer: Any,
    bounds: tuple[float, float, float, float],
    level_db: np.ndarray,
    limits: tuple[float, float],
    lut: np.ndarray,
) -> None:
    """Paint ``level_db`` (rows: frequency from the bottom, columns: time) over the pixel box
    ``bounds`` (x, y, width, height from the bottom left), each pixel the colour of the cell
    under its centre (``imshow``'s nearest-neighbour look without its resampling pipeline).
    ``lut``: the colour map as ``(N, 4)`` uint8; ``limits``: the dB values of its two ends."""
    x0, y0, width, height = bounds
    left, bottom = round(x0), round(y0)
    cols, rows = round(x0 + width) - left, round(y0 + height) - bottom
    n_rows, n_cols = level_db.shape
    col_of = np.minimum(((np.arange(cols) + 0.5) * n_cols / cols).astype(int), n_cols - 1)
    row_of = np.minimum(((np.arange(rows) + 0.5) * n_rows / rows).astype(int), n_rows - 1)
    low, high = limits
    scaled = (np.nan_to_num(level_db, nan=low) - low) / (high - low) * len(lut)
    index = np.clip(scaled, 0, len(lut) - 1).astype(np.intp)
    pixels = lut[index[row_of][:, col_of]]  # Agg's raster rows run from the bottom, too
    renderer.draw_image(renderer.new_gc(), left, bottom, np.ascontiguousarray(pixels))


def envelope(spectrum_db: np.ndarray, probe: str) -> np.ndarray:
    """The multitone's spectrum as its upper envelope (the largest bin within ±3): it excites
    every other DFT bin and leaves guard bins free around the grid, and those empty bins would
    fill the panel with a comb down to the floor. Other probes are drawn as they are."""
    reach = 3
    if probe != "noise" or len(spectrum_db) <= 2 * reach:
        return spectrum_db
    padded = np.pad(np.asarray(spectrum_db, dtype=float), reach, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    return windows.max(axis=-1)


def spectrum_panel(ax, stage, probe, colours, top_db, labelled=LABELLED, first=True) -> None:
    """One probe's averaged spectrum: the predicted grid dotted, lines circled in the colour
    of the stage that introduced them, the strongest ``labelled`` ones labelled; under
    silence, the DC offset as a square at 0 Hz. ``first``: the row's first panel, the only one
    with dB labels (the row shares one scale). Few ticks: they are most of the drawing cost."""
    nyquist = stage["fs_out_hz"] / 2
    ax.plot(stage["freqs_hz"], envelope(stage["spectra"][probe], probe), lw=0.7, color="C0")
    if len(stage["grid_hz"]):  # one collection, not one artist per line (drawing cost)
        ax.vlines(stage["grid_hz"], 0, 1, transform=ax.get_xaxis_transform(), color="0.55",
                  lw=0.6, ls=":")  # fmt: skip
    lines = lines_of(stage, probe)
    for colour in dict.fromkeys(colours.get(origin, "C3") for _, _, origin in lines):
        mine = [(f, lv) for f, lv, origin in lines if colours.get(origin, "C3") == colour]
        ax.plot(*zip(*mine, strict=True), "o", mfc="none", mew=1.2, color=colour, ms=6)
    listed = [
        (f"{freq:.1f} Hz, {level:.1f} dB" if nyquist < 2000 else
         f"{freq / 1000:.4g} kHz, {level:.1f} dB", colours.get(origin, "C3"))
        for freq, level, origin in lines[:labelled]
    ]  # fmt: skip
    for row, (words, colour) in enumerate(listed):  # a list in the corner: never collides
        ax.text(0.98, 0.97 - 0.1 * row, words, transform=ax.transAxes, fontsize=6,
                color=colour, ha="right", va="top",
                bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 0.5})  # fmt: skip
    dc = stage.get("dc_db")
    if probe == "silence" and dc is not None and dc > FLOOR_DB:
        ax.plot(0, dc, "s", color="k", ms=5)
        ax.annotate(
            f"DC {dc:.1f} dB", (0, dc), fontsize=6, xytext=(4, -9), textcoords="offset points"
        )
    ax.set_ylim(FLOOR_DB, top_db)
    ax.set_xlim(0, NYQUIST_MARGIN * nyquist)  # a line at the Nyquist stays inside
    ax.xaxis.set_major_formatter(hz_formatter(nyquist))
    ax.set_xlabel(hz_unit(nyquist), fontsize=7, labelpad=1)
    ax.xaxis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
    ax.yaxis.set_major_locator(MultipleLocator(40))
    ax.tick_params(labelsize=6.5, labelleft=first)


def response_panel(ax, stage) -> None:
    """The magnitude response across the input band, y axis fitted to the curve."""
    fractions, response = stage["response"]
    ax.plot(fractions, response, color="C2")
    ax.axhline(-3, color="0.55", lw=0.6, ls=":")
    low, high = float(np.min(response)), float(np.max(response))
    pad = max(1.0, 0.1 * (high - low))
    ax.set(xlim=(0, 1), ylim=(min(low, -3.0) - pad, max(high, 0.0) + pad))
    if stage.get("response_through_chain"):
        ax.text(0.02, 0.04, "through the chain", transform=ax.transAxes, fontsize=6)
    ax.set_xlabel("fraction of fs_in/2", fontsize=7, labelpad=1)
    ax.xaxis.set_major_locator(MultipleLocator(0.5))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(labelsize=6.5)


def summary_legend(fig, colours: dict[str, str], shown: list[dict[str, Any]]) -> None:
    handles = [
        Line2D([], [], color="C0", lw=0.8, label="averaged spectrum"),
        Line2D([], [], color="0.55", lw=0.8, ls=":", label="predicted line grid (m x fs_in)"),
        Line2D([], [], color="k", marker="s", ls="", ms=5, label="DC under silence"),
        Line2D([], [], color="C2", label="response; dotted: -3 dB"),
    ]
    names = [s["name"] for s in shown]
    handles += [
        Line2D([], [], color=colours[n], marker="o", mfc="none", ls="", label=f"line made by {n}")
        for n in colours
        if n in names or n == "output"
    ][:8]
    fig.legend(handles=handles, loc="upper center", ncol=4, fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.42 / fig.get_figheight()))  # fmt: skip


def plot_summary(data: dict[str, Any], path: Path) -> None:
    """Rows = stages (identical repeats folded into the first), columns = probes' averaged
    spectra and the response; one dB scale, tall enough for the loudest line."""
    everything = data["stages"]
    shown = [s for s in everything if not s.get("same_as")]
    repeats: dict[str, list[str]] = {}
    for s in everything:
        if s.get("same_as"):
            repeats.setdefault(s["same_as"], []).append(s["name"])
    colours = origin_colours(everything)
    top = db_top(shown)
    cols = len(SUMMARY_PROBES) + 1
    row_h, head = 2.3, 1.25
    height = row_h * len(shown) + head + 0.2
    fig = Figure(figsize=(12, height), dpi=DPI)
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.45 / height, top=1 - head / height,
                        wspace=0.28, hspace=0.55)  # fmt: skip
    axes = fig.subplots(len(shown), cols, squeeze=False)
    for row, stage in enumerate(shown):
        for col, probe in enumerate(SUMMARY_PROBES):
            spectrum_panel(axes[row, col], stage, probe, colours, top, first=col == 0)
            if row == 0:
                axes[row, col].set_title(f"{probe} probe", fontsize=9)
        response_panel(axes[row, -1], stage)
        if row == 0:
            axes[row, -1].set_title("response (dB)", fontsize=9)
        label = stage_label(stage)
        if stage["name"] in repeats:
            label += f"\n+{len(repeats[stage['name']])} like it (same op and weights)"
        axes[row, 0].set_ylabel(f"{label}\ndB re signal", fontsize=7)
    fig.suptitle(f"upsampcheck: {data['title']} - {data['verdict'].upper()}", fontsize=11,
                 y=1 - 0.12 / height)  # fmt: skip
    summary_legend(fig, colours, shown)
    figure_png(fig, path)


def write_figures(data: dict[str, Any], folder: Path, job: str | int = "all") -> list[str]:
    """The figures of a report's payload into ``folder``; returns the file names written.
    ``job``: ``"all"``, ``"summary"`` (``summary.png``) or a stage's index (that stage's
    spectrograms, one per probe), as listed by :func:`figure_jobs`."""
    stages = data["stages"]
    jobs = figure_jobs(data) if job == "all" else [job]
    names: list[str] = []
    for one in jobs:
        if one == "summary":
            plot_summary(data, folder / SUMMARY_PNG)
            names.append(SUMMARY_PNG)
        else:
            stem = file_stems(s["name"] for s in stages)[one]
            names += plot_spectrograms(stages[one], folder, stem, db_top(stages))
    return names


def plot_trend(trend: dict[str, Any], path: Path) -> None:
    """The model output's loudest line across checkpoints (thick), each stage's (thin), and
    the tonal thresholds, labelled; a checkpoint without any line is marked at the bottom."""
    rows = trend["checkpoints"]
    by_step = trend["ordered_by"] == "step"
    x = [row["step"] if by_step else i for i, row in enumerate(rows)]
    fig = Figure(figsize=(8, 4.2), dpi=DPI)
    fig.subplots_adjust(left=0.1, right=0.66, bottom=0.2, top=0.88)
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
    # The failing count on its own axis: a run that fails on something other than a line
    # (the output's offset, a filtering warning in fail-on) never draws an empty picture.
    failing = [row["failing"] for row in rows]
    counts = ax.twinx()
    counts.plot(x, failing, "s:", color="C3", ms=4, lw=1, alpha=0.7)
    counts.set_ylim(-0.5, max(failing, default=0) + 1.5)
    counts.set_ylabel("failing findings", color="C3", fontsize=8)
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    counts.tick_params(labelsize=7, colors="C3")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], ls=":", marker="s", color="C3", ms=4))
    labels.append("failing findings (right axis)")
    ax.legend(
        handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.09, 1.0), frameon=False
    )
    figure_png(fig, path)
