"""Figures of ``upsampcheck audio``: per file, the averaged spectrum with its floor, lines and
grid, a spectrogram with the grid marked, and the lock evidence (the worst locked line's level
frame by frame beside the file's RMS); a summary of every file's spectrum.

Input: :meth:`upsampcheck.report.audio.AudioReport.figure_data` (numpy arrays in dB relative
to each file's RMS). Figure API and Agg canvas only, as in :mod:`.plotting`; the same reading
aids: axis labels with units, a legend for every line and marker, 150 dpi.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .plotting import DPI, NYQUIST_MARGIN, figure_png, paint_image, save_png

MAX_GRID_MARKS = 64
MAX_LABELS = 5
"""Only the loudest grid lines get a frequency label."""


def file_stem(entry: dict[str, Any]) -> str:
    """``file<index>_<name without suffix>``, safe as a file name."""
    stem = Path(entry["name"]).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"file{entry['index']}_{stem}").strip("_")


def grid_marks(entry: dict[str, Any]) -> list[float]:
    """Multiples of the grid spacing below the Nyquist (at most :data:`MAX_GRID_MARKS`)."""
    spacing = entry["grid_hz"]
    if not spacing:
        return []
    count = int(entry["sample_rate_hz"] / 2 / spacing + 1e-9)
    step = max(1, -(-count // MAX_GRID_MARKS))
    return [m * spacing for m in range(step, count + 1, step)]


def spectrum_axes(ax: Any, entry: dict[str, Any], annotate: bool = True) -> None:
    """Averaged and quiet-passage spectra, the floor, the grid dotted, lines circled."""
    freqs = entry["freqs_hz"]
    ax.plot(freqs, entry["average_db"], lw=0.6, color="C0", label="long-term average")
    if entry["quiet_db"] is not None:
        ax.plot(freqs, entry["quiet_db"], lw=0.5, color="C2", alpha=0.8, label="quiet passages")
    ax.plot(freqs, entry["floor_db"], lw=0.8, color="0.3", ls="--", label="floor")
    for freq in grid_marks(entry):
        ax.axvline(freq, color="C3", lw=0.4, ls=":", alpha=0.6)
    top = float(np.max(entry["average_db"]))
    lowest = [entry["floor_db"]] + ([entry["quiet_db"]] if entry["quiet_db"] is not None else [])
    bottom = min(float(np.percentile(curve, 2)) for curve in lowest) - 10
    loudest = sorted((ln for ln in entry["lines"] if ln[3]), key=lambda ln: -ln[1])
    labelled = {ln[0] for ln in loudest[:MAX_LABELS]} if annotate else set()
    listed = []
    for freq, level, locked, on in entry["lines"]:
        color = "C3" if on else ("C1" if locked else "0.6")
        ax.plot(freq, level, "o" if locked else "x", mfc="none", color=color, ms=5)
        if freq in labelled:
            listed.append((level, f"{freq:.1f} Hz, {level:.1f} dB", color))
    for row, (_, words, color) in enumerate(sorted(listed, reverse=True)):  # a list: no overlap
        ax.text(0.01, 0.97 - 0.055 * row, words, transform=ax.transAxes, fontsize=6,
                color=color, va="top", bbox={"fc": "white", "ec": "none", "alpha": 0.7,
                                             "pad": 0.5})  # fmt: skip
    ax.set_xlim(0, NYQUIST_MARGIN * entry["sample_rate_hz"] / 2)  # a line at fs/2 is drawn
    ax.set_ylim(max(bottom, top - 160), top + 10)
    ax.set_xlabel("frequency (Hz)", fontsize=8)
    ax.set_ylabel("dB re file RMS (per bin)", fontsize=8)
    ax.tick_params(labelsize=7)


def marker_legend(ax: Any, entry: dict[str, Any]) -> None:
    """A legend naming every curve, the grid and each kind of marker."""
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    extra = [
        (Line2D([], [], color="C3", lw=0.6, ls=":"), "grid multiples", bool(entry["grid_hz"])),
        (Line2D([], [], color="C3", marker="o", mfc="none", ls=""), "locked, on the grid", True),
        (Line2D([], [], color="C1", marker="o", mfc="none", ls=""), "locked, on no grid", True),
        (Line2D([], [], color="0.6", marker="x", ls=""), "spectral peak, not locked", True),
    ]
    for handle, label, wanted in extra:
        if wanted:
            handles.append(handle)
            labels.append(label)
    ax.legend(handles, labels, fontsize=6, loc="upper right", framealpha=0.8)


def title(entry: dict[str, Any]) -> str:
    grid = (
        f"grid fs/{entry['grid_factor']} = {entry['grid_hz']:.2f} Hz"
        if entry["grid_hz"]
        else "no grid"
    )
    return f"{entry['name']}: {grid} - {entry['verdict'].upper()}"


def plot_spectrum(entry: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(8, 4.2), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.13, top=0.9)
    ax = fig.add_subplot()
    spectrum_axes(ax, entry)
    marker_legend(ax, entry)
    ax.set_title(f"{title(entry)}\nmarkers: each line's power (coherent when locked)", fontsize=9)
    figure_png(fig, path)


def plot_lock(entry: dict[str, Any], path: Path) -> bool:
    """The worst locked line's coherent-frame level over time beside the file's frame RMS,
    both in dB re the file's RMS: a steady line is flat, one that follows the program moves
    with the RMS. False (nothing drawn) when the file has no locked line."""
    strip = entry.get("strip")
    if not strip:
        return False
    line, rms = np.asarray(strip["line_db"]), np.asarray(strip["rms_db"])
    times = (np.arange(len(rms)) + 0.5) / len(rms) * entry["duration_s"]
    fig = Figure(figsize=(8, 3.3), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.86)
    ax = fig.add_subplot()
    ax.plot(times, rms, color="0.4", lw=0.9, label="file RMS per frame")
    how = "follows the program" if strip["follows_program"] else "steady"
    ax.plot(
        times, line, color="C3", lw=1.1,
        label=f"{strip['freq_hz']:.2f} Hz line per frame (R {strip['resultant']:.2f}, {how})",
    )  # fmt: skip
    finite = np.concatenate([line[np.isfinite(line)], rms[np.isfinite(rms)]])
    if finite.size:
        ax.set_ylim(max(float(finite.min()), float(finite.max()) - 120) - 5, finite.max() + 8)
    ax.set_xlim(0, entry["duration_s"])
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("dB re file RMS", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="lower right", framealpha=0.8)
    ax.set_title(
        f"{entry['name']}: the worst locked line frame by frame (its phase is what locks it)",
        fontsize=9,
    )
    figure_png(fig, path)
    return True


def plot_spectrogram(entry: dict[str, Any], path: Path) -> None:
    """The file's spectrogram, grid multiples dashed. The image is painted straight into the
    axes' pixels (:func:`~.plotting.paint_image`), not through ``imshow``'s resampling, which
    took 40 MB for a 512 x 600 image and was the audio command's peak memory."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    level = entry["spectrogram_db"]
    fig = Figure(figsize=(8, 4.2), dpi=DPI)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.13, top=0.9)
    ax = fig.add_subplot()
    top = float(np.max(level))
    limits = (top - 110, top)
    image = ax.imshow(  # sets the limits and feeds the colour bar; never drawn itself
        np.zeros((2, 2)),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=limits[0],
        vmax=limits[1],
        interpolation="nearest",
        extent=(0, entry["duration_s"], 0, entry["sample_rate_hz"] / 2),
    )
    marks = [ax.axhline(f, color="cyan", lw=0.4, ls="--", alpha=0.5) for f in grid_marks(entry)]
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("frequency (Hz)", fontsize=8)
    ax.tick_params(labelsize=7)
    if entry["grid_hz"]:
        from matplotlib.lines import Line2D

        ax.legend(
            [Line2D([], [], color="cyan", lw=0.6, ls="--")], ["grid multiples"], fontsize=7,
            loc="upper right", framealpha=0.6,
        )  # fmt: skip
    ax.set_title(title(entry), fontsize=9)
    fig.colorbar(image, ax=ax, label="dB re file RMS", pad=0.02)
    canvas = FigureCanvasAgg(fig)
    for artist in (image, *marks):
        artist.set_animated(True)
    canvas.draw()
    renderer = canvas.get_renderer()
    lut = (image.cmap(np.arange(image.cmap.N)) * 255).round().astype(np.uint8)
    paint_image(renderer, ax.bbox.bounds, np.asarray(level, dtype=float), limits, lut)
    for artist in marks:
        ax.draw_artist(artist)
    if ax.get_legend() is not None:
        ax.draw_artist(ax.get_legend())
    save_png(canvas, path)


SUMMARY_ROWS = 8
"""Files drawn in summary.png (a row each): the first ones, failing files first."""


def plot_summary(data: dict[str, Any], path: Path) -> None:
    """One row per file: its averaged spectrum with floor, lines and grid; at most
    :data:`SUMMARY_ROWS` rows, failing files first (a row per file of 48 made a 19,000-pixel
    image that took 90 MB to draw); the title says how many are shown."""
    every = data["files"]
    files = sorted(every, key=lambda e: e["verdict"] != "fail")[:SUMMARY_ROWS]
    files.sort(key=lambda e: e["index"])
    height = 2.6 * len(files) + 0.8
    fig = Figure(figsize=(8, height), dpi=DPI)
    fig.subplots_adjust(
        left=0.09, right=0.98, bottom=0.4 / height, top=1 - 0.6 / height, hspace=0.5
    )
    axes = fig.subplots(len(files), 1, squeeze=False)[:, 0]
    for ax, entry in zip(axes, files, strict=True):
        spectrum_axes(ax, entry, annotate=False)
        marker_legend(ax, entry)
        ax.set_title(title(entry), fontsize=9)
    shown = "" if len(files) == len(every) else f" ({len(files)} of {len(every)} files shown)"
    fig.suptitle(
        f"upsampcheck audio: {data['title']} - {data['verdict'].upper()}{shown}", fontsize=11
    )
    figure_png(fig, path)


def write_figures(data: dict[str, Any], folder: Path) -> list[str]:
    """Every figure of an audio report's payload into ``folder``; returns the names."""
    names = []
    for entry in data["files"]:
        if entry["spectrogram_db"].shape[-1] == 0:  # a file kept in numbers only
            continue
        stem = file_stem(entry)
        plot_spectrum(entry, folder / f"{stem}_spectrum.png")
        plot_spectrogram(entry, folder / f"{stem}_spectrogram.png")
        names += [f"{stem}_spectrum.png", f"{stem}_spectrogram.png"]
        if plot_lock(entry, folder / f"{stem}_lock.png"):
            names.append(f"{stem}_lock.png")
    plot_summary(data, folder / "summary.png")
    return [*names, "summary.png"]
