"""Figures: spectrograms per stage and probe, and the summary grid (matplotlib Figure API, Agg).

No pyplot: every figure is a :class:`matplotlib.figure.Figure` rendered by the Agg canvas, so
nothing touches global state or needs a display. All panels share one dB scale relative to
each stage's signal level, so a line's colour reads as its level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .analysis import to_db
from .report import Report, StageResult

DB_RANGE = (-140.0, 20.0)
SUMMARY_PROBES = ("noise", "silence", "dc", "tone")


def grid_lines(stage: StageResult) -> np.ndarray:
    """Predicted artifact frequencies of a stage: multiples of its input rate up to Nyquist."""
    count = int(stage.factor // 2)
    return stage.fs_in_hz * np.arange(1, count + 1)


def save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=72, pil_kwargs={"compress_level": 1})


def stage_label(stage: StageResult) -> str:
    return f"stage {stage.index} {stage.name} (x{stage.factor:g}, {stage.fs_in_hz:g} Hz in)"


def plot_spectrograms(stage: StageResult, folder: Path) -> list[str]:
    """One PNG per probe: the stage output's spectrogram, the stage's predicted lines dashed.

    Axes, ticks and colour bar are drawn once; each probe then only blits its image, lines and
    title onto that background (drawing ticks is most of matplotlib's cost)."""
    m = stage.measurement
    fig = Figure(figsize=(6, 3.2), dpi=72)
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.15, top=0.9)
    ax = fig.add_subplot()
    first = next(iter(m.spectrograms.values()))
    image = ax.imshow(
        np.zeros_like(first),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=DB_RANGE[0],
        vmax=DB_RANGE[1],
        interpolation="nearest",
        extent=(0, first.shape[1], 0, stage.fs_out_hz / 2),
    )
    marks = [ax.axhline(f, color="cyan", lw=0.6, ls="--", alpha=0.7) for f in grid_lines(stage)]
    ax.set(xlabel="frame", ylabel="Hz")
    fig.colorbar(image, ax=ax, label="dB re signal level", pad=0.02)
    canvas = FigureCanvasAgg(fig)
    for artist in (image, *marks):
        artist.set_animated(True)
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)
    names = []
    for probe, power in m.spectrograms.items():
        canvas.restore_region(background)
        image.set_data(to_db(power / m.signal_power))
        ax.set_title(f"{stage_label(stage)}: {probe}", fontsize=10)
        for artist in (image, *marks, ax.title):
            ax.draw_artist(artist)
        name = f"stage{stage.index}_{stage.name}_{probe}.png".replace("/", "_")
        Image.fromarray(np.asarray(canvas.buffer_rgba())).save(folder / name, compress_level=1)
        names.append(name)
    return names


def plot_summary(report: Report, path: Path) -> None:
    """Rows = stages, columns = probes' averaged spectra (+ the response): detected lines
    circled, the stage's predicted line grid dotted, one dB scale for all panels."""
    stages = report.stages
    cols = len(SUMMARY_PROBES) + 1
    height = 2.2 * len(stages) + 0.8
    fig = Figure(figsize=(2.8 * cols, height))
    fig.subplots_adjust(
        left=0.06, right=0.99, bottom=0.35 / height, top=1 - 0.7 / height, wspace=0.25, hspace=0.35
    )
    axes = fig.subplots(len(stages), cols, squeeze=False)
    for row, stage in enumerate(stages):
        m = stage.measurement
        for col, probe in enumerate(SUMMARY_PROBES):
            ax = axes[row, col]
            ax.plot(m.freqs_hz, to_db(m.spectra[probe] / m.signal_power), lw=0.7, color="C0")
            for freq in grid_lines(stage):
                ax.axvline(freq, color="0.6", lw=0.5, ls=":")
            for line in (ln for ln in m.lines if ln.probe == probe):
                ax.plot(line.freq_hz, line.level_db, "o", mfc="none", color="C3", ms=6)
                ax.annotate(
                    f"{line.freq_hz:.0f} Hz\n{line.level_db:.0f} dB",
                    (line.freq_hz, line.level_db),
                    fontsize=6,
                    color="C3",
                    xytext=(3, 3),
                    textcoords="offset points",
                )
            ax.set_ylim(*DB_RANGE)
            ax.set_xlim(0, stage.fs_out_hz / 2)
            if row == 0:
                ax.set_title(probe, fontsize=9)
            if col == 0:
                ax.set_ylabel(f"stage {stage.index} {stage.name}\ndB re signal", fontsize=8)
            ax.tick_params(labelsize=7)
        ax = axes[row, -1]
        fractions, response = m.response_curve
        ax.plot(fractions, response, color="C2")
        ax.axhline(-3, color="0.6", lw=0.5, ls=":")
        ax.set(xlim=(0, 1), ylim=(min(-12, float(response.min()) - 1), 3))
        if row == 0:
            ax.set_title("response (x: fraction of fs_in/2)", fontsize=9)
        ax.tick_params(labelsize=7)
    verdict = report.verdict.upper()
    fig.suptitle(f"upsampcheck: {report.subject.get('name', '')} - {verdict}", fontsize=11)
    save(fig, path)


def write_figures(report: Report, folder: Path) -> list[str]:
    """Every figure of the report into ``folder``; returns the file names written."""
    names = []
    for stage in report.stages:
        names += plot_spectrograms(stage, folder)
    plot_summary(report, folder / "summary.png")
    names.append("summary.png")
    return names
