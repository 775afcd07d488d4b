"""What ``trend`` reads from a ``report.json`` made elsewhere, checked before it is trusted.

Reports travel (CI artifacts, commits) and anyone can edit one: a report whose ``exit_code``
says 256, whose levels are NaN or whose verdict disagrees with its findings must not let a
failing checkpoint pass a gate. :func:`check_report` checks every field ``trend`` reads
(types, ranges, consistency) and refuses the report with one line naming the file and the
field; :func:`read_report` reads the file within :mod:`~upsampcheck.parsed`'s bounds first.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..paths import shown
from .findings import SEVERITIES

LEVEL_LIMIT_DB = 1e4
"""A measured level in a report lies within +-LEVEL_LIMIT_DB (levels are floored far above
the low end; nothing real comes near the high end)."""
FREQ_LIMIT_HZ = 1e9
STEP_LIMIT = 2**63 - 1
NAME_LIMIT = 256


class _Fields:
    """Typed reads from one report: each wrong field is a one-line usage error naming the
    report file and the field's key path."""

    def __init__(self, where: str) -> None:
        self.where = where

    def refuse(self, path: tuple, problem: str) -> UsageError:
        from ..parsed import key_path

        return UsageError(f"{self.where}: field {key_path(path)} {problem}")

    def get(self, doc: dict, path: tuple, kind: type | tuple, optional: bool = False) -> Any:
        """``doc[path[-1]]`` of type ``kind`` (None where ``optional``; bools are no ints)."""
        from ..parsed import describe

        if path[-1] not in doc:
            if optional:
                return None
            raise self.refuse(path, "is missing")
        value = doc[path[-1]]
        if value is None and optional:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(NAMES.get(k, k.__name__) for k in kinds)
            raise self.refuse(path, f"must be {names} (got {describe(value)})")
        return value

    def number(
        self, doc: dict, path: tuple, low: float, high: float, optional: bool = False
    ) -> float | None:
        """A finite number from ``low`` to ``high``."""
        from ..parsed import describe

        value = self.get(doc, path, (int, float), optional)
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise self.refuse(path, f"must be a finite number from {low:g} to {high:g} "
                              f"(got {describe(value)})")  # fmt: skip
        return value

    def name(self, doc: dict, path: tuple, optional: bool = False) -> str | None:
        """A printable one-line name of at most :data:`NAME_LIMIT` characters."""
        value = self.get(doc, path, str, optional)
        if value is not None and (
            len(value) > NAME_LIMIT or not value.isprintable() or (not value and not optional)
        ):
            raise self.refuse(
                path, f"must be a printable name of 1 to {NAME_LIMIT} characters on one line"
            )
        return value

    def lines(self, doc: dict, path: tuple, optional: bool = False) -> None:
        """A list of tonal lines, each with a finite ``freq_hz`` and ``level_db``."""
        lines = self.get(doc, path, list, optional)
        for i, line in enumerate(lines or []):
            at = (*path, i)
            if not isinstance(line, dict):
                raise self.refuse(at, "must be an object")
            self.number(line, (*at, "freq_hz"), 0.0, FREQ_LIMIT_HZ)
            self.number(line, (*at, "level_db"), -LEVEL_LIMIT_DB, LEVEL_LIMIT_DB)


NAMES = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "an object"}


def check_report(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` when every field ``trend`` reads from it can be trusted, else a one-line
    :class:`UsageError` naming ``where`` and the field.

    Checked: the tool's name and a known ``schema_version``; ``verdict`` ("pass" or "fail"),
    ``exit_code`` (0, 1 or 2, and 1 exactly when the verdict is "fail"), the findings' severities
    (the verdict is "fail" exactly when one fails); each stage's name and tonal lines; the output's
    lines; the tonal thresholds; the subject's name, checkpoint and step. Levels are finite and
    within +-:data:`LEVEL_LIMIT_DB`, frequencies within 0 .. :data:`FREQ_LIMIT_HZ`, steps within
    0 .. 2**63 - 1, names printable and short.
    """
    from .findings import SCHEMA_VERSION

    f = _Fields(where)
    tool = doc.get("tool") if isinstance(doc, dict) else None
    if not isinstance(tool, dict) or tool.get("name") != "upsampcheck":
        raise UsageError(f"{where}: not an upsampcheck report.json")
    if "files" in doc and "stages" not in doc:
        raise UsageError(
            f"{where}: an audio report (upsampcheck audio); trend follows layer and model "
            "reports across checkpoints"
        )
    keys = ("schema_version", "stages", "findings", "verdict", "exit_code", "thresholds")
    if any(key not in doc for key in keys):
        raise UsageError(f"{where}: incomplete report (needs {', '.join(keys)})")
    version = f.get(doc, ("schema_version",), int)
    if not 1 <= version <= SCHEMA_VERSION:
        raise f.refuse(("schema_version",), f"must be 1 to {SCHEMA_VERSION} (got {version})")
    verdict = f.get(doc, ("verdict",), str)
    if verdict not in ("pass", "fail"):
        raise f.refuse(("verdict",), 'must be "pass" or "fail"')
    code = f.get(doc, ("exit_code",), int)
    if code not in (0, 1, 2):
        raise f.refuse(("exit_code",), f"must be 0, 1 or 2 (got {code})")
    if code != (1 if verdict == "fail" else 0):
        raise f.refuse(("exit_code",), f"is {code} but the verdict is {verdict!r}")
    findings = f.get(doc, ("findings",), list)
    failing = False
    for i, finding in enumerate(findings):
        if not isinstance(finding, dict):
            raise f.refuse(("findings", i), "must be an object")
        severity = f.get(finding, ("findings", i, "severity"), str)
        if severity not in SEVERITIES:
            raise f.refuse(("findings", i, "severity"), f"must be one of {', '.join(SEVERITIES)}")
        failing = failing or severity == "fail"
    if failing != (verdict == "fail"):
        said = "a finding fails" if failing else "no finding fails"
        raise f.refuse(("verdict",), f"is {verdict!r} but {said}")
    stages = f.get(doc, ("stages",), list)
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict):
            raise f.refuse(("stages", i), "must be an object")
        f.name(stage, ("stages", i, "name"))
        tonal = f.get(stage, ("stages", i, "tonal"), dict)
        at = ("stages", i, "tonal")
        if "max_level_db" not in tonal:
            raise f.refuse((*at, "max_level_db"), "is missing")
        f.number(tonal, (*at, "max_level_db"), -LEVEL_LIMIT_DB, LEVEL_LIMIT_DB, optional=True)
        f.lines(tonal, (*at, "lines"))
    output = f.get(doc, ("output",), dict, optional=True)
    if output is not None:
        f.lines(output, ("output", "lines"), optional=True)
    thresholds = f.get(doc, ("thresholds",), dict)
    for key in ("tonal-fail-db", "tonal-warn-db"):
        entry = f.get(thresholds, ("thresholds", key), dict, optional=True)
        if entry is not None:
            f.number(entry, ("thresholds", key, "value"), -LEVEL_LIMIT_DB, LEVEL_LIMIT_DB, True)
    subject = f.get(doc, ("subject",), dict, optional=True)
    if subject is not None:
        f.name(subject, ("subject", "name"), optional=True)
        checkpoint = f.get(subject, ("subject", "checkpoint"), str, optional=True)
        if checkpoint is not None and (len(checkpoint) > 4096 or not checkpoint.isprintable()):
            raise f.refuse(("subject", "checkpoint"), "must be a printable path on one line")
        step = f.get(subject, ("subject", "step"), int, optional=True)
        if step is not None and not 0 <= step <= STEP_LIMIT:
            raise f.refuse(("subject", "step"), f"must be from 0 to 2**63 - 1 (got {step})")
    return doc


def read_report(path: Path) -> dict[str, Any]:
    """A ``report.json`` of this tool that ``trend`` can trust (:func:`check_report`), read
    within the bounds of :mod:`~upsampcheck.parsed`, or a one-line usage error naming the
    file and the field."""
    from ..parsed import load_json_bounded, read_text_bounded

    where = f"report {shown(path)}"
    doc = load_json_bounded(read_text_bounded(path, "report"), where)
    return check_report(doc, where)
