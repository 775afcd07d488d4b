"""The report of ``upsampcheck audio``: verdict, ``report.json`` and the figure payload, with
the same surface as :class:`~.findings.Report` (``to_json``, ``figure_data``, ``verdict``,
``exit_code``) plus ``clips()`` for the page's players. The findings are in
:mod:`.audio_findings`."""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..config import AudioThresholds
from .audio_findings import file_findings, line_severity
from .findings import SCHEMA_VERSION, Finding, Verdict

if TYPE_CHECKING:
    from ..audio.results import AudioLine, FileResult
    from ..outputs.clips import Clip

__all__ = ["AudioReport", "file_findings", "file_json", "input_report", "render_file_lines"]


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def lock_json(line: AudioLine) -> dict[str, Any] | None:
    lock = line.lock
    if lock is None:
        return None
    return {
        "fraction": f"{lock.fraction[0]}/{lock.fraction[1]}",
        "resultant": _round(lock.resultant, 4),
        "rayleigh_z": _round(lock.z, 2),
        "false_alarm": float(f"{lock.false_alarm:.3g}"),
        "frames": lock.frames,
        "level_dbfs": _round(lock.level_dbfs, 2),
        "quiet_level_db": _round(lock.quiet_level_db, 2),
        "quiet_level_dbfs": _round(lock.quiet_level_dbfs, 2),
        "program_correlation": _round(lock.program_correlation, 3),
        "follows_program": lock.follows_program,
        "amplitude_lsb": _round(lock.amplitude_lsb, 3),
        "quiet_amplitude_lsb": _round(lock.quiet_amplitude_lsb, 3),
    }


def line_json(line: AudioLine, t: AudioThresholds) -> dict[str, Any]:
    c = line.consistency
    return {
        "freq_hz": _round(line.freq_hz, 4),
        "level_db": _round(line.level_db, 2),
        "prominence_db": _round(line.prominence_db, 1),
        "quiet_prominence_db": _round(line.quiet_prominence_db, 1),
        "measured_in": line.measured_in,
        "locked": line.locked,
        "coherence": lock_json(line),
        "stationary": line.stationary,
        "stationarity": {
            "drift_bins": _round(line.drift_bins, 3),
            "purity": _round(line.purity, 3),
            "segments": {"seen": c.seen, "hidden": c.hidden, "moved": c.moved, "absent": c.absent},
            "consistency": _round(c.fraction, 3),
        },
        "on_grid": line.on_grid,
        "harmonic": line.harmonic,
        "stage_rate_hz": _round(line.stage_rate_hz, 4),
        "severity": line_severity(line, t) if line.on_grid else None,
    }


def grid_json(result: FileResult) -> dict[str, Any] | None:
    grid = result.grid
    if grid is None:
        return None
    return {
        "spacing_hz": _round(grid.spacing_hz, 4),
        "factor": grid.factor,
        "fitted_spacing_hz": _round(grid.fitted_spacing_hz, 4),
        "lines_explained": grid.explained,
        "locked_lines": grid.total,
        "false_alarm": float(f"{grid.false_alarm:.3g}"),
        "pattern_lsb": _round(result.pattern_lsb, 3),
        "stage_rates": [
            {
                "factor": r.factor,
                "fs_in_hz": _round(r.fs_in_hz, 4),
                "lines": r.lines,
                "by_chance": _round(r.by_chance, 2),
            }
            for r in grid.rates
        ],
    }


def file_json(result: FileResult, t: AudioThresholds) -> dict[str, Any]:
    info, spectra = result.info, result.spectra
    return {
        "path": result.label,
        "format": info.format,
        "subtype": info.subtype,
        "sample_rate_hz": info.sample_rate,
        "channels": info.channels,
        "frames": info.frames,
        "duration_s": _round(info.duration_s, 3),
        "rms_dbfs": _round(result.rms_dbfs, 2),
        "peak_dbfs": _round(result.peak_dbfs, 2),
        "dc_db": _round(result.dc_db, 2),
        "lsb_dbfs": None if result.lsb is None else _round(20 * math.log10(result.lsb), 2),
        "analysis": {
            "frame": result.n_fft,
            "hop": result.n_fft // 2,
            "window": "kaiser(16)",
            "bin_hz": _round(result.bin_hz, 4),
            "frames": int(spectra.segment_frames.sum()),
            "segments": int(len(spectra.segment_frames)),
        },
        "coherence": {
            "window": "kaiser(16) / its overlap-add (constant overlap-add at hop n/2)",
            **{
                k: (_round(v, 4) if isinstance(v, float) else v)
                for k, v in result.coherence.items()
            },
        },
        "quiet": {
            "fraction": t.quiet_fraction,
            "frames": spectra.quiet_frames,
            "seconds": _round(result.quiet_seconds, 2),
            "rms_db": _round(result.quiet_rms_db, 2),
            "silent_frames": result.silent_frames,
        },
        "lines": [line_json(line, t) for line in result.lines if line.locked],
        "rejected_lines": [line_json(line, t) for line in result.lines if not line.locked],
        "grid": grid_json(result),
    }


def environment() -> dict[str, Any]:
    import soundfile as sf

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "soundfile": sf.__version__,
        "libsndfile": sf.__libsndfile_version__,
        "device": "cpu",
        "seed": None,
    }


def to_db(power: np.ndarray, reference: float) -> np.ndarray:
    return 10 * np.log10(np.maximum(power / reference, 1e-30))


@dataclass
class AudioReport(Verdict):
    """The whole result of ``upsampcheck audio``: one entry per file, findings, verdict."""

    subject: dict[str, Any]
    thresholds: AudioThresholds
    files: list[FileResult]
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``report.json``: the common fields, then ``files[i]`` with lines, grid, quiet."""
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "upsampcheck", "version": __version__},
            "environment": environment(),
            "subject": self.subject,
            "thresholds": self.thresholds.to_json(),
            "files": [file_json(r, self.thresholds) for r in self.files],
            "findings": [f.to_json() for f in self.findings],
            "notes": self.notes,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
        }

    def clips(self) -> tuple[dict[str, list[Clip]], list[str]]:
        """For each file (by its label): its loudest and its quietest stretch, true level and
        normalised (made here, so only the true level is held per file); and notes for the
        page (none)."""
        from ..outputs.clips import normalised

        return {
            r.label: [c for clip in r.clips for c in (clip, normalised(clip))]
            for r in self.files
            if r.clips
        }, []

    def figure_data(self) -> dict[str, Any]:
        """The payload of :mod:`~.outputs.plotting_audio`: plain numpy, dB re each file's RMS."""
        files = []
        for i, r in enumerate(self.files):
            ref, s = r.reference_power, r.spectra
            files.append(
                {
                    "index": i,
                    "label": r.label,
                    "name": r.info.path.name,
                    "sample_rate_hz": r.info.sample_rate,
                    "duration_s": r.info.duration_s,
                    "freqs_hz": s.freqs_hz,
                    "average_db": to_db(s.average, ref),
                    "quiet_db": None if s.quiet is None else to_db(s.quiet, ref),
                    "floor_db": to_db(r.floor, ref),
                    "spectrogram_db": to_db(s.spectrogram, ref),
                    "lines": [(ln.freq_hz, ln.level_db, ln.locked, ln.on_grid) for ln in r.lines],
                    "strip": _strip(r),
                    "grid_hz": None if r.grid is None else r.grid.spacing_hz,
                    "grid_factor": None if r.grid is None else r.grid.factor,
                    "verdict": "fail"
                    if any(f.severity == "fail" and f.stage == r.label for f in self.findings)
                    else "pass",
                }
            )
        return {
            "kind": "audio",
            "title": self.subject["name"],
            "verdict": self.verdict,
            "files": files,
        }


def _strip(result: FileResult) -> dict[str, Any] | None:
    """The worst grid line's (else the loudest locked line's) per-column coherent level and
    the file's frame RMS, both in dB re the file's power, for the figure."""
    on = [ln for ln in result.lines if ln.on_grid] or result.locked_lines
    if not on or result.strip_rms_db is None:
        return None
    worst = max(on, key=lambda ln: ln.level_db)
    return {
        "freq_hz": worst.freq_hz,
        "line_db": worst.lock.strip_db,
        "rms_db": result.strip_rms_db,
        "follows_program": worst.lock.follows_program,
        "resultant": worst.lock.resultant,
    }


def render_file_lines(report: dict[str, Any]) -> list[str]:
    """verdict.txt's lines about each file (used by :func:`.text.render_text`)."""
    out = []
    for f in report.get("files", []):
        grid = f["grid"]
        where = (
            f"grid {grid['spacing_hz']:g} Hz (fs/{grid['factor']}), "
            f"{grid['lines_explained']} of {grid['locked_lines']} locked line(s)"
            if grid
            else f"no grid, {len(f['lines'])} locked line(s)"
        )
        out.append(
            f"file {f['path']} ({f['sample_rate_hz']:g} Hz, {f['channels']} ch, "
            f"{f['duration_s']:.1f} s, {f['rms_dbfs']:.1f} dBFS RMS): {where}"
        )
    return out


def input_report(result: Any, t: AudioThresholds) -> tuple[dict[str, Any], list[Finding]]:
    """``model --input``: the output's analysis as ``report.json``'s ``input`` (a file entry
    whose lines name the stage each came from) and its findings, each on the stage that made
    the loudest line it is about (``input`` where no stage explains it)."""
    doc = file_json(result.file, t)
    doc["input"] = str(result.path)
    for line in doc["lines"]:
        freq = next(f for f in result.attribution if round(f, 4) == line["freq_hz"])
        line["stage"] = result.attribution[freq]
    findings = file_findings(result.file, t)
    locked = result.file.locked_lines
    worst = max(locked, key=lambda ln: ln.level_db, default=None)
    for finding in findings:
        origin = result.attribution.get(worst.freq_hz) if worst is not None else None
        finding.stage = (origin if finding.check == "tonal" and origin else None) or "input"
        finding.message = f"with --input {result.path.name}: {finding.message}"
    return doc, findings
