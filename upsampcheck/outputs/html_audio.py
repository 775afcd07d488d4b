"""The part of ``report.html`` about each file of an ``upsampcheck audio`` report: its figures
(spectrum, spectrogram, the lock evidence of its worst locked line) and the locked lines with
their phase-coherence numbers, then its clips."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import html_parts as h
from .clips import Clip

FIGURES = (
    ("spectrum", "Long-term averaged (blue) and quiet-passage (green) spectra in dB re the "
     "file's RMS, the program floor dashed, the grid dotted; circles: lines locked to the "
     "sample clock (red on the grid), crosses: spectral peaks that are not locked."),
    ("lock", "The worst locked line's level in each coherence frame beside the file's RMS: "
     "its phase stays put whatever its level, which is what the Rayleigh test measures; a "
     "line that moves with the RMS follows the program (a gain pattern), a flat one is steady "
     "(a bias replica)."),
    ("spectrogram", "Spectrogram in dB re the file's RMS, the grid's multiples dashed."),
)  # fmt: skip


def lines_table(entry: Mapping[str, Any]) -> str:
    """The locked lines, loudest first: frequency, fraction of fs, levels, R, false alarm."""
    rows = []
    for line in entry.get("lines") or []:
        c = line["coherence"] or {}
        rows.append(
            [
                h.hertz(line["freq_hz"]),
                h.text(f"{c.get('fraction', '')}·fs"),
                h.number(line["level_db"], 1),
                h.number(c.get("level_dbfs"), 1),
                h.number(c.get("quiet_level_db"), 1),
                h.number(line.get("quiet_prominence_db"), 1),
                h.number(c.get("resultant"), 3),
                h.text(f"{c.get('false_alarm', 1):.2g}"),
                h.text("follows the program" if c.get("follows_program") else "steady"),
                h.text("yes" if line.get("on_grid") else "no"),
            ]
        )
    if not rows:
        return "<p>No line is locked to the sample clock.</p>"
    head = [
        "Hz", "at", "dB re RMS", "dBFS", "quiet dB re RMS", "quiet prominence dB", "R",
        "false alarm", "level", "on grid",
    ]  # fmt: skip
    return h.table(head, rows, numeric={0, 2, 3, 4, 5, 6, 7})


def file_sections(
    data: Mapping[str, Any], folder: Path, clips: Mapping[str, Sequence[Clip]], clip_grid: Any
) -> Iterator[str]:
    """One section per file: figures, the locked-lines table, the clips; yielded piece by
    piece (each figure and clip grid is megabytes of ``data:`` URI)."""
    for index, entry in enumerate(data.get("files") or []):
        label = entry["path"]
        grid = entry.get("grid")
        where = f"grid fs/{grid['factor']} = {grid['spacing_hz']:g} Hz" if grid else "no grid"
        yield f"<h2>File: {h.text(label)}</h2><p>{h.text(where)}</p>"
        for kind, caption in FIGURES:
            found = sorted(folder.glob(f"file{index}_*_{kind}.png"))
            if found:
                yield h.image(found[0].read_bytes(), f"{label} {kind}", caption)
        yield lines_table(entry)
        if clips.get(label):
            yield clip_grid(clips[label])
