"""One repair: check the model, tie the chosen stages on a copy, check the copy, compare.

Which stages: the names given (each must be a measured stage the remedy can fix: a refusal
is a :class:`~upsampcheck.errors.UsageError` with the reason), or by default every stage that
fails, with those the remedy cannot fix listed as refused with the reason. Both checks list
lines down to the measurement's round-off floor (``line-floor-db`` −200 for this comparison),
so that what the repair removed is seen, not just what crosses the report floor.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import Thresholds, load_thresholds
from ..errors import UsageError
from ..measure.lines import FLOOR_DB
from ..model.check import ModelOptions, check_model
from ..report.findings import Report, StageResult
from ..subjects.loading import LoadedModel
from . import compare, ties
from .apply import Refused, StageTie, find_target, tie_target

ROUNDOFF = "round-off of the model's dtype: the phase sums are tied to its precision"


@dataclass
class RepairResult:
    """A repair's outcome: the corrected module, both reports and the figures
    (:meth:`to_json`). ``verdict`` and ``exit_code`` are the repaired model's."""

    module: nn.Module
    before: Report
    after: Report
    ties: list[StageTie]
    stages: list[dict[str, Any]]
    output: list[dict[str, Any]]
    beyond_reach: list[dict[str, Any]]
    residue: list[dict[str, Any]]
    """DC/silence lines of repaired stages left at the model dtype's round-off."""
    refused: list[dict[str, str]]
    snr_db: float
    probe: torch.Tensor = field(repr=False)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.after.verdict

    @property
    def exit_code(self) -> int:
        return self.after.exit_code

    def to_json(self) -> dict[str, Any]:
        snr = None if math.isinf(self.snr_db) else round(self.snr_db, 3)
        return {
            "repaired": [s["name"] for s in self.stages],
            "stages": self.stages,
            "output_lines": self.output,
            "beyond_reach": self.beyond_reach,
            "residue": self.residue,
            "refused": self.refused,
            "output_snr_db": snr,
            "verdict_before": self.before.verdict,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "notes": self.notes,
        }


def failing_stages(report: Report, thresholds: Thresholds) -> list[StageResult]:
    """Stages with a failing finding of their own, or a failing output line they made."""
    failing = {f.stage for f in report.findings if f.severity == "fail"}
    failing |= {
        line.origin
        for line in report.output_lines or []
        if line.level_db >= thresholds.tonal_fail_db
    }
    return [s for s in report.stages if s.name in failing]


def choose(report: Report, names: list[str] | None, thresholds: Thresholds) -> list[StageResult]:
    """The stages named (refusing an unknown name), or the failing ones."""
    if not names:
        return failing_stages(report, thresholds)
    by_name = {s.name: s for s in report.stages}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(by_name) or "none"
        raise UsageError(f"--stage {unknown[0]}: no measured stage of that name (stages: {known})")
    return [by_name[n] for n in dict.fromkeys(names)]


def pair_offset(tie: StageTie, which: str) -> float:
    """``max_{pair, 0<m<s} |W_m| / max_pair Σ_r |P_r|``: how untied the phase sums are."""
    w = tie.before if which == "before" else tie.after
    if tie.kind == "transposed":
        sums = ties.phase_sums(w, tie.stride, tie.dilation)
    else:
        sums = ties.subpixel_sums(w, tie.stride)
    scale = float(sums.abs().sum(-1).max())
    lines = ties.phase_offsets(sums)[..., 1:].abs()
    return float(lines.max()) / scale if scale > 0 and lines.numel() else 0.0


def repair_loaded(
    loaded: LoadedModel,
    opts: ModelOptions,
    thresholds: Thresholds | None = None,
    stages: list[str] | None = None,
    subject: dict | None = None,
    progress: Callable[[str], None] = lambda step: None,
) -> RepairResult:
    """Check ``loaded``, tie the chosen stages on a copy, check the copy, compare."""
    thresholds = replace(thresholds or load_thresholds(), line_floor_db=FLOOR_DB)
    progress("checking the model as it is")
    before = check_model(loaded, opts, thresholds, subject, progress)
    chosen = choose(before, stages, thresholds)
    module = copy.deepcopy(loaded.module)
    done, refused = [], []
    for stage in chosen:
        try:
            done.append(tie_target(find_target(module, stage.name, stage.kind)))
        except Refused as why:
            if stages:
                raise UsageError(f"cannot repair {why}") from None
            refused.append({"stage": stage.name, "reason": str(why)})
    notes = [
        "lines are listed down to the round-off floor (line-floor-db -200 for this comparison);"
        f" a line gone after the repair lies below {compare.GONE_DB:.0f} dB re signal"
    ]
    if not chosen:
        notes.append("no stage fails: nothing to repair")
    if any(tie.changed for tie in done):
        progress("checking the repaired model")
        after_loaded = LoadedModel(module, loaded.source, loaded.example_inputs, [], loaded.trained)
        after = check_model(after_loaded, opts, thresholds, subject, progress)
    else:  # nothing changed: the same model, the same report
        after = before
        notes.append("no weight changed: the model after is the model before")
    shape = tuple(before.subject.get("input_shape") or ())
    probe = compare.multitone_input(shape, before.sample_rate_hz, opts)
    snr = compare.output_snr(loaded.module, module, probe, opts.method)
    return RepairResult(
        module, before, after, done, *figures(before, after, done, refused), refused, snr,
        probe, notes,
    )  # fmt: skip


def figures(before: Report, after: Report, done: list[StageTie], refused: list[dict]):
    """Per repaired stage, the output's lines, and what stays beyond the remedy's reach."""
    after_stages = {s.name: s for s in after.stages}
    before_stages = {s.name: s for s in before.stages}
    repaired = {t.name for t in done}
    why_refused = {r["stage"]: r["reason"] for r in refused}
    rows_out = compare.line_rows(before.output_lines or [], after.output_lines or [])
    stages, beyond = [], []
    for tie in done:
        worst, rms = compare.response_change(tie)
        old = before_stages[tie.name].measurement.lines
        new = after_stages[tie.name].measurement.lines if tie.name in after_stages else []
        rows = compare.line_rows(old, new)
        measured = None
        if tie.name in after_stages:
            measured = compare.measured_change_curve(
                before_stages[tie.name].measurement, after_stages[tie.name].measurement
            )
        stages.append({
            "name": tie.name, "kind": tie.kind, "stride": tie.stride,
            "changed": tie.changed,
            "kernel_change_db": _db(tie.relative_change_db),
            "response_change_max_db": _change(measured, np.max),
            "response_change_rms_db": _change(measured, lambda c: np.sqrt(np.mean(c**2))),
            "kernel_response_change_max_db": round(worst, 4),
            "kernel_response_change_rms_db": round(rms, 4),
            "phase_offset_before": pair_offset(tie, "before"),
            "phase_offset_after": pair_offset(tie, "after"),
            "lines": rows,
        })  # fmt: skip
        beyond += [_beyond(tie.name, r, repaired, why_refused) for r in rows if r["after_db"]]
    beyond += [_beyond("output", r, repaired, why_refused) for r in rows_out if r["after_db"]]
    residue = [b for b in beyond if b["reason"] == ROUNDOFF]
    return stages, rows_out, [b for b in beyond if b["reason"] != ROUNDOFF], residue


def _change(measured: tuple | None, reduce) -> float | None:
    """``reduce`` (max or RMS) of the measured response change's magnitude, in dB."""
    return None if measured is None else round(float(reduce(np.abs(measured[1]))), 4)


def _db(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 3)


def _beyond(where: str, row: dict, repaired: set[str], refused: dict[str, str]) -> dict | None:
    """Why a line that is still there after the repair is beyond the remedy's reach."""
    origin = row["origin"]
    after_last = origin == "output" or origin.startswith("upstream of")
    if row["probe"] != "noise" and {origin, row["origin_before"]} & repaired:
        reason = ROUNDOFF
    elif row["probe"] == "noise":
        reason = (
            "made from the multitone by a nonlinearity"
            + (" after the last upsampler" if after_last else f" at or after {origin}")
            + ": it mixes the signal and its images onto the grid, which no tie of phase sums"
            " (they act on DC) prevents"
        )
    elif after_last:
        reason = "made after the last upsampler: no stage's phase sums make it"
    elif origin in refused:
        reason = f"made by {origin}, refused: {refused[origin]}"
    else:
        reason = f"made by {origin}, which was not selected for repair"
    return {"where": where, "probe": row["probe"], "freq_hz": row["freq_hz"],
            "origin": origin, "level_db": row["after_db"], "reason": reason}  # fmt: skip
