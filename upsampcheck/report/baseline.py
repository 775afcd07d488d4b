"""Baselines: gate on *regressions* against a saved set of measurements, so a team can adopt
the check on a model that already fails it and ratchet from there (docs/method.md).

A baseline is a small JSON document (``"format": "upsampcheck-baseline"``, ``schema_version``
1) holding, per stage (keyed by name), what the gate compares: kind, factor and input rate
(the stage's identity), its tonal lines, the response points, image rejection and DC level.
Everything here works on the plain ``report.json`` dict and ignores fields it does not know.

What counts as a regression (a ``fail`` finding), with ``tol`` = ``tolerance_db``:

- tonal: a line with no baseline line of the same probe within max(2 Hz, 0.5 % of its
  frequency); or a matched line louder than its baseline by more than ``tol``;
- filtering: any response point lower than its baseline by more than ``tol``;
- replicas: image rejection higher (worse) by more than ``tol``;
- offset: DC level higher by more than ``tol``;
- check ``"baseline"``: a stage that is new, gone, or changed kind/factor/input rate (its
  measurements are then not compared: they are no longer measurements of the same thing).

Image rejection and DC are compared after clamping both sides to the report's
``line-floor-db`` threshold, so that numerical dust far below anything audible (e.g. DC at
-200 dB vs -180 dB) never fails a gate. The -3 dB point is stored but not gated: the response
points already cover droop. Improvements (quieter or vanished lines, better response, image
rejection or DC) are never failures; ``compare(..., improvements=True)`` and
``apply_baseline`` list them as ``info`` findings so the team knows to refresh the baseline.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UsageError
from ..paths import check_writable_parent
from ..paths import shown as show_path

FORMAT = "upsampcheck-baseline"
SCHEMA_VERSION = 1
DEFAULT_FLOOR_DB = -110.0
REFRESH = "if the change is intended, write a new baseline from this report"


def _keyed(stages: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Stages by name; a repeated name gets ``#<index>`` so no stage is lost."""
    out: dict[str, Mapping[str, Any]] = {}
    for stage in stages:
        name = str(stage.get("name", stage.get("index", "")))
        out[name if name not in out else f"{name}#{stage.get('index')}"] = stage
    return out


def make_baseline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The measurements of ``report`` worth gating on, keyed by stage name."""
    stages = {}
    for key, s in _keyed(report.get("stages") or []).items():
        tonal = s.get("tonal") or {}
        stages[key] = {
            "name": s.get("name"),
            "kind": s.get("kind"),
            "factor": s.get("factor"),
            "fs_in_hz": s.get("fs_in_hz"),
            "lines": [
                {"freq_hz": ln["freq_hz"], "level_db": ln["level_db"], "probe": ln.get("probe")}
                for ln in tonal.get("lines") or []
            ],
            "max_level_db": tonal.get("max_level_db"),
            "response_db": dict((s.get("filtering") or {}).get("response_db") or {}),
            "minus3db_fraction": (s.get("filtering") or {}).get("minus3db_fraction"),
            "image_rejection_db": (s.get("replicas") or {}).get("image_rejection_db"),
            "dc_db": (s.get("offset") or {}).get("dc_db"),
        }
    tool = report.get("tool") or {}
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "upsampcheck", "version": tool.get("version", __version__)},
        "subject": report.get("subject"),
        "sample_rate_hz": report.get("sample_rate_hz"),
        "stages": stages,
    }


def write_baseline(report: Mapping[str, Any], path: Path | str) -> dict[str, Any]:
    """Write ``make_baseline(report)`` to ``path`` atomically (whole file or nothing)."""
    doc = make_baseline(report)
    os.replace(stage_baseline(doc, path), path)
    return doc


def stage_baseline(doc: Mapping[str, Any], path: Path | str) -> Path:
    """Write ``doc`` to a hidden file beside ``path`` and return it; ``os.replace`` it onto
    ``path`` to publish it (a run does that once its report is in place). A write that fails
    leaves nothing behind and is a one-line usage error."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise UsageError(
            f"--write-baseline {show_path(path)}: cannot write it: {exc.strerror or exc}"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.write("\n")
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(
                f"--write-baseline {show_path(path)}: cannot write it: {exc.strerror or exc}"
            ) from None
        raise
    return Path(tmp)


def check_baseline_target(path: Path | str) -> None:
    """``--write-baseline`` may create a file or replace an earlier baseline, nothing else: an
    existing file that is no upsampcheck baseline (a README, a report.json) is refused."""
    path = Path(path)
    if not os.path.lexists(path):
        check_writable_parent(path, "--write-baseline")
        return
    if path.is_dir():
        raise UsageError(f"--write-baseline {show_path(path)}: is a folder, not a file")
    from ..parsed import load_json_bounded, read_text_bounded

    text = read_text_bounded(path, "--write-baseline")  # a FIFO or device is refused here
    try:
        doc = load_json_bounded(text, "--write-baseline")
    except UsageError:
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(
            f"--write-baseline {show_path(path)}: exists and is not an upsampcheck baseline; "
            "refusing to overwrite it (give a new file name)"
        )


def _is_num(value: Any, optional: bool = False) -> bool:
    """A finite int or float (never a bool); None passes when ``optional``."""
    if value is None:
        return optional
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) < 2**64


def _stage_problem(s: Mapping[str, Any]) -> str | None:
    """The first field of a baseline stage that is not what :func:`compare` reads, or None:
    strings where names are, finite numbers (or null) where levels are, response points keyed
    by a fraction of the input Nyquist."""
    for key in ("name", "kind"):
        if s.get(key) is not None and not isinstance(s.get(key), str):
            return f"{key} is not a string"
    numbers = ("factor", "fs_in_hz", "max_level_db", "minus3db_fraction")
    for key in (*numbers, "image_rejection_db", "dc_db"):
        if not _is_num(s.get(key), optional=True):
            return f"{key} is not a finite number"
    lines = s.get("lines")
    if not isinstance(lines, list):
        return "lines is not a list"
    for i, line in enumerate(lines):
        if not _line_ok(line):
            return f"lines[{i}] lacks a finite freq_hz and level_db"
        if line.get("probe") is not None and not isinstance(line.get("probe"), str):
            return f"lines[{i}].probe is not a string"
    response = s.get("response_db")
    if not isinstance(response, dict):
        return "response_db is not an object"
    for point, value in response.items():
        try:
            fraction = float(point)
        except ValueError:
            fraction = math.nan
        if not 0.0 <= fraction <= 1.0:
            return f"response_db key {json.dumps(point[:40])} is not a fraction from 0 to 1"
        if not _is_num(value, optional=True):
            return f"response_db[{json.dumps(point)}] is not a finite number"
    return None


def _problem(doc: Any) -> str | None:
    """What is wrong with a parsed baseline document, or None."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        if isinstance(doc, dict) and isinstance(doc.get("stages"), list) and "verdict" in doc:
            return "is a report.json, not a baseline"
        return f'is not an upsampcheck baseline (no "format": "{FORMAT}")'
    if doc.get("schema_version") != SCHEMA_VERSION:
        version = doc.get("schema_version")
        shown = repr(version) if isinstance(version, int | None) else "of another type"
        return f"has schema_version {shown}; expected {SCHEMA_VERSION}"
    if doc.get("subject") is not None and not isinstance(doc.get("subject"), dict):
        return "is malformed: key subject is not an object"
    stages = doc.get("stages")
    if not isinstance(stages, dict):
        return "is malformed: key stages is not an object"
    for key, s in stages.items():
        name = json.dumps(key if len(key) <= 40 else key[:40] + "...")
        if not isinstance(s, dict):
            return f"is malformed: key stages[{name}] is not an object"
        problem = _stage_problem(s)
        if problem:
            return f"is malformed: key stages[{name}]: {problem}"
    return None


def read_baseline(path: Path | str) -> dict[str, Any]:
    """Load a baseline; a missing, unreadable, oversized, corrupt, too deeply nested or
    wrong-schema file, or one with an integer beyond 2**64, a non-finite level or a field of
    the wrong type, is a UsageError whose message is one line naming the file and the key."""
    from ..parsed import load_json_bounded, read_text_bounded

    shown = " ".join(show_path(path).split())
    doc = load_json_bounded(read_text_bounded(path, "baseline"), f"baseline {shown}")
    problem = _problem(doc)
    if problem:
        raise UsageError(" ".join(f"baseline {shown} {problem}".split()))
    return doc


def _finding(
    check: str, severity: str, stage: str, message: str, cause: str = "", fix: str = "", **at: Any
) -> dict[str, Any]:
    return {
        "check": check,
        "severity": severity,
        "stage": stage,
        "freq_hz": at.get("freq_hz"),
        "level_db": at.get("level_db"),
        "message": message,
        "cause": cause,
        "fix": fix,
    }


def _line_ok(line: Any) -> bool:
    return (
        isinstance(line, Mapping) and _is_num(line.get("freq_hz")) and _is_num(line.get("level_db"))
    )


def _match(line: Mapping[str, Any], candidates: list[Mapping[str, Any]]) -> Mapping | None:
    """The closest line of the same probe within max(2 Hz, 0.5 % of the frequency)."""
    f = line["freq_hz"]
    near = [
        c
        for c in candidates
        if c.get("probe") == line.get("probe") and abs(c["freq_hz"] - f) <= max(2.0, 0.005 * abs(f))
    ]
    return min(near, key=lambda c: abs(c["freq_hz"] - f), default=None)


def _floor(report: Mapping[str, Any]) -> float:
    entry = (report.get("thresholds") or {}).get("line-floor-db") or {}
    value = entry.get("value") if isinstance(entry, Mapping) else entry
    return float(value) if _is_num(value) else DEFAULT_FLOOR_DB


def _compare_stage(
    name: str, s: Mapping[str, Any], b: Mapping[str, Any], tol: float, floor: float
) -> list[dict[str, Any]]:
    """Regressions (fail) and improvements (info) of one stage against its baseline."""
    out: list[dict[str, Any]] = []
    lines = [ln for ln in (s.get("tonal") or {}).get("lines") or [] if _line_ok(ln)]
    old_lines = [ln for ln in b.get("lines") or [] if _line_ok(ln)]
    fix = f"find what changed in this stage (weights, kernel, bias); {REFRESH}"
    for ln in lines:
        f, level, probe = ln["freq_hz"], ln["level_db"], ln.get("probe")
        old = _match(ln, old_lines)
        where = f"{f:.1f} Hz ({probe} probe)"
        if old is None:
            msg = f"new tonal line at {where}, {level:.1f} dB: not in the baseline"
            cause = "the stage now makes a tone the baseline did not have"
            out.append(_finding("tonal", "fail", name, msg, cause, fix, freq_hz=f, level_db=level))
        elif abs(level - old["level_db"]) > tol:
            delta = level - old["level_db"]
            sev, word = ("fail", "louder") if delta > 0 else ("info", "quieter")
            msg = (
                f"tonal line at {where} {word}: {level:.1f} dB vs {old['level_db']:.1f} dB in "
                f"the baseline ({delta:+.1f} dB, tolerance {tol:g} dB)"
            )
            cause = "the tone this stage makes got louder" if sev == "fail" else ""
            advice = fix if cause else REFRESH
            out.append(_finding("tonal", sev, name, msg, cause, advice, freq_hz=f, level_db=level))
    for old in old_lines:
        if _match(old, lines) is None:
            msg = f"baseline tonal line at {old['freq_hz']:.1f} Hz ({old.get('probe')}) is gone"
            out.append(_finding("tonal", "info", name, msg, "", REFRESH, freq_hz=old["freq_hz"]))

    response = (s.get("filtering") or {}).get("response_db") or {}
    for point, was in (b.get("response_db") or {}).items():
        now = response.get(point)
        if not _is_num(now) or not _is_num(was) or abs(now - was) <= tol:
            continue
        sev = "fail" if now < was else "info"
        msg = (
            f"response at {point} of the input Nyquist: {now:.1f} dB vs {was:.1f} dB in the "
            f"baseline ({now - was:+.1f} dB, tolerance {tol:g} dB)"
        )
        cause = "more droop: the stage now cuts the top of the band harder" if sev == "fail" else ""
        freq = float(point) * s["fs_in_hz"] / 2 if _is_num(s.get("fs_in_hz")) else None
        advice = fix if cause else REFRESH
        out.append(_finding("filtering", sev, name, msg, cause, advice, freq_hz=freq, level_db=now))

    images = (s.get("replicas") or {}).get("image_rejection_db")
    dc = (s.get("offset") or {}).get("dc_db")
    for check, now, was, what in (
        ("replicas", images, b.get("image_rejection_db"), "image rejection"),
        ("offset", dc, b.get("dc_db"), "DC under silence"),
    ):
        if not _is_num(now) or not _is_num(was):
            continue
        now_c, was_c = max(now, floor), max(was, floor)
        if abs(now_c - was_c) <= tol:
            continue
        sev = "fail" if now_c > was_c else "info"
        msg = (
            f"{what}: {now:.1f} dB vs {was:.1f} dB in the baseline "
            f"({now_c - was_c:+.1f} dB above a {floor:g} dB floor, tolerance {tol:g} dB)"
        )
        cause = f"{what} got worse" if sev == "fail" else ""
        advice, freq = (fix if cause else REFRESH), (0.0 if check == "offset" else None)
        out.append(_finding(check, sev, name, msg, cause, advice, freq_hz=freq, level_db=now))
    return out


def _subject(doc: Mapping[str, Any]) -> tuple[Any, Any]:
    subject = doc.get("subject") or {}
    return (subject.get("kind"), subject.get("name"))


def _identity(s: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (s.get("kind"), s.get("factor"), s.get("fs_in_hz"))


def compare(
    report: Mapping[str, Any],
    baseline: Mapping[str, Any],
    tolerance_db: float = 1.0,
    *,
    improvements: bool = False,
) -> list[dict[str, Any]]:
    """Regressions of ``report`` against ``baseline`` as ``fail`` findings (report shape).

    With ``improvements=True`` the list also holds ``info`` findings for what got better.
    """
    if not _is_num(tolerance_db) or tolerance_db < 0:
        raise UsageError(f"baseline tolerance must be a number >= 0 dB, got {tolerance_db!r}")
    floor = _floor(report)
    old_stages = baseline.get("stages") or {}
    out: list[dict[str, Any]] = []
    stages = _keyed(report.get("stages") or [])
    for key, s in stages.items():
        name = str(s.get("name", key))
        b = old_stages.get(key)
        if b is None:
            msg = f"stage {key!r} ({s.get('kind')}, x{s.get('factor')}) is not in the baseline"
            cause = "the model's upsampling path has a stage the baseline did not have"
            out.append(_finding("baseline", "fail", name, msg, cause, REFRESH))
        elif _identity(s) != _identity(b):
            old, new = _identity(b), _identity(s)
            msg = (
                f"stage {key!r} changed since the baseline: kind/factor/fs_in "
                f"{old[0]}/x{old[1]}/{old[2]} Hz -> {new[0]}/x{new[1]}/{new[2]} Hz"
            )
            cause = "the stage is no longer the one measured, so its numbers cannot be compared"
            out.append(_finding("baseline", "fail", name, msg, cause, REFRESH))
        else:
            out += _compare_stage(name, s, b, float(tolerance_db), floor)
    for key, b in old_stages.items():
        if key not in stages:
            msg = f"stage {key!r} from the baseline is missing from this report"
            cause = "the model's upsampling path lost or renamed a stage"
            out.append(_finding("baseline", "fail", str(b.get("name") or key), msg, cause, REFRESH))
    return out if improvements else [f for f in out if f["severity"] == "fail"]


def apply_baseline(
    report: Mapping[str, Any], baseline: Mapping[str, Any], tolerance_db: float = 1.0
) -> dict[str, Any]:
    """A copy of ``report`` gated on regressions only.

    Original ``fail`` findings on a stage the baseline covers, for a check with no
    regression, become ``info`` with " (in baseline)" appended; the rest stay as they were.
    Regressions are appended as ``fail`` findings, improvements as ``info``; ``verdict`` and
    ``exit_code`` are recomputed and a note says what was compared.
    """
    out = copy.deepcopy(dict(report))
    found = compare(report, baseline, tolerance_db, improvements=True)
    regressed = {(f["stage"], f["check"]) for f in found if f["severity"] == "fail"}
    # A stage that is new or changed is not covered: its own fails still fail.
    uncovered = {f["stage"] for f in found if f["check"] == "baseline"}
    findings = []
    for f in out.get("findings") or []:
        stage, check = f.get("stage"), f.get("check")
        gated = check in ("tonal", "filtering", "replicas", "offset")  # never numerics
        covered = gated and stage not in uncovered and (stage, check) not in regressed
        if f.get("severity") == "fail" and covered:
            f = {**f, "severity": "info", "message": f"{f.get('message', '')} (in baseline)"}
        findings.append(f)
    out["findings"] = findings + found
    fails = sum(f["severity"] == "fail" for f in found)
    better = len(found) - fails
    note = f"compared with a baseline (tolerance {float(tolerance_db):g} dB): {fails} regression(s)"
    note += f", {better} improvement(s)" + (f"; {REFRESH} to lock them in" if better else "")
    notes = list(out.get("notes") or []) + [note]
    if _subject(baseline) != _subject(report):
        kind, name = _subject(baseline)
        notes.append(f"the baseline was written for {kind} {name}, not for this subject")
    out["notes"] = notes
    out["verdict"] = (
        "fail" if any(f.get("severity") == "fail" for f in findings + found) else "pass"
    )
    out["exit_code"] = 1 if out["verdict"] == "fail" else 0
    return out
