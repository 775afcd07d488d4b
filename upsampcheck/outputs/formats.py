"""CI output formats for a report: JUnit XML and GitHub Actions annotations (docs/method.md).

Every function here works on the plain ``report.json`` dict (``Report.to_json()``), not on
the ``Report`` object, and ignores fields it does not know. Output is deterministic: no
timestamps, no durations, no host names, so the same report always gives the same bytes.
"""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import UsageError
from ..paths import check_writable_parent, describe_kind, shown

CHECK_ORDER = ("tonal", "filtering", "replicas", "offset", "numerics", "discovery")
_SEVERITY_RANK = {"fail": 0, "warn": 1, "info": 2, "pass": 3}
# Characters XML 1.0 cannot carry at all (ElementTree would write them unescaped).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Keys under ``subject`` that may name the file the report is about, first match wins.
_FILE_KEYS = ("file", "path", "checkpoint", "spec_file", "config")


def _subject_title(report: Mapping[str, Any]) -> str:
    subject = report.get("subject") or {}
    return f"{subject.get('kind', '')} {subject.get('name', '')}".strip() or "report"


def _subject_file(report: Mapping[str, Any]) -> str | None:
    subject = report.get("subject") or {}
    for key in _FILE_KEYS:
        if isinstance(subject.get(key), str) and subject[key]:
            return subject[key]
    return None


def _fmt(value: Any, digits: int = 1) -> str:
    """A number for humans; ``""`` for a missing one."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def _grouped(report: Mapping[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Findings grouped by (stage, check): stages in report order, then checks in the
    canonical order, then anything else (e.g. a finding on a stage only a baseline had)."""
    stage_rank = {s.get("name"): i for i, s in enumerate(report.get("stages") or [])}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for finding in report.get("findings") or []:
        key = (str(finding.get("stage", "")), str(finding.get("check", "")))
        groups.setdefault(key, []).append(finding)

    def rank(key: tuple[str, str]) -> tuple[int, int, str, str]:
        stage, check = key
        check_rank = CHECK_ORDER.index(check) if check in CHECK_ORDER else len(CHECK_ORDER)
        return (stage_rank.get(stage, len(stage_rank)), check_rank, stage, check)

    return {key: groups[key] for key in sorted(groups, key=rank)}


# --- JUnit -------------------------------------------------------------------------------


def _xml(text: Any) -> str:
    """``text`` as a string XML 1.0 can hold (invalid control characters dropped)."""
    return _XML_INVALID.sub("", "" if text is None else str(text))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: Any) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml(text)
    return element


def _properties(parent: ET.Element, pairs: Iterable[tuple[str, Any]]) -> None:
    pairs = [(k, v) for k, v in pairs if v is not None]
    if pairs:
        props = _sub(parent, "properties")
        for name, value in pairs:
            _sub(props, "property", name=name, value=value)


def _finding_text(finding: Mapping[str, Any]) -> str:
    lines = [str(finding.get("message", ""))]
    where = [
        f"{label}: {_fmt(finding[key])} {unit}"
        for key, label, unit in (("freq_hz", "frequency", "Hz"), ("level_db", "level", "dB"))
        if finding.get(key) is not None
    ]
    if where:
        lines.append(", ".join(where))
    if finding.get("cause"):
        lines.append(f"cause: {finding['cause']}")
    if finding.get("fix"):
        lines.append(f"fix: {finding['fix']}")
    return "\n".join(lines)


def _testcase(suite: ET.Element, stage: str, check: str, findings: list[dict]) -> bool:
    """Add one ``<testcase>``; True when it fails. The schema allows no properties here, so
    each finding's severity, frequency and level go into the text."""
    case = _sub(suite, "testcase", classname=stage, name=check, time="0")
    fails = [f for f in findings if f.get("severity") == "fail"]
    if fails:
        text = "\n\n".join(_finding_text(f) for f in fails)
        _sub(case, "failure", text, message=fails[0].get("message", ""), type="fail")
    others = [f for f in findings if f.get("severity") != "fail"]
    if others:
        out = "\n".join(f"[{f.get('severity', '')}] {_finding_text(f)}" for f in others)
        _sub(case, "system-out", out)
    return bool(fails)


def to_junit(report: Mapping[str, Any], name: str = "upsampcheck") -> str:
    """The report as JUnit XML: one ``<testsuite>`` (named after the subject), one
    ``<testcase>`` per stage x check (classname = stage, name = check).

    A ``fail`` finding becomes a ``<failure type="fail">`` carrying message, cause and fix;
    ``warn``/``info``/``pass`` findings pass, their messages in ``<system-out>`` marked with
    their severity. Valid against the common ``junit-10.xsd`` (properties only on the suite,
    no ``skipped`` on ``<testsuites>``). Deterministic: no timestamp, and ``time="0"`` (the
    schema's optional durations, given so that readers that expect them find a number).
    """
    groups = _grouped(report)
    root = ET.Element("testsuites", {"name": _xml(name)})
    suite = _sub(root, "testsuite", name=_subject_title(report))
    tool = report.get("tool") or {}
    env = report.get("environment") or {}
    _properties(
        suite,
        [
            ("verdict", report.get("verdict")),
            ("exit_code", report.get("exit_code")),
            ("schema_version", report.get("schema_version")),
            ("tool_version", tool.get("version")),
            ("torch", env.get("torch")),
            ("device", env.get("device")),
            ("seed", env.get("seed")),
            ("sample_rate_hz", report.get("sample_rate_hz")),
        ],
    )
    failures = sum(_testcase(suite, stage, check, fs) for (stage, check), fs in groups.items())
    if report.get("notes"):
        _sub(suite, "system-out", "\n".join(str(n) for n in report["notes"]))
    counts = {"tests": str(len(groups)), "failures": str(failures), "errors": "0", "time": "0"}
    root.attrib.update(counts)
    suite.attrib.update({**counts, "skipped": "0"})
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --- GitHub Actions ----------------------------------------------------------------------


def escape_data(text: str) -> str:
    """Escape a workflow command's message: ``%``, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value: as data, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(command: str, message: str, **props: str | None) -> str:
    given = ",".join(f"{k}={escape_property(v)}" for k, v in props.items() if v)
    return f"::{command}{' ' + given if given else ''}::{escape_data(message)}"


def _md_cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def to_github(
    report: Mapping[str, Any], summary_png: str | None = None, *, file: str | None = None
) -> tuple[str, str]:
    """(workflow commands, markdown step summary) for a GitHub Actions job.

    ``::error`` for each ``fail`` finding, ``::warning`` for each ``warn``; ``info`` and
    ``pass`` give no command. ``file`` defaults to a path found in the report's subject.
    """
    file = file or _subject_file(report)
    commands = []
    for (stage, check), findings in _grouped(report).items():
        for f in findings:
            kind = {"fail": "error", "warn": "warning"}.get(f.get("severity", ""))
            if kind:
                title = f"upsampcheck {check}: {stage}"
                commands.append(_command(kind, _finding_text(f), title=title, file=file))
    text = "".join(c + "\n" for c in commands)

    verdict = str(report.get("verdict", "unknown")).upper()
    md = [f"## upsampcheck: {verdict} ({_md_cell(_subject_title(report))})", ""]
    counts = {}
    for f in report.get("findings") or []:
        counts[f.get("severity")] = counts.get(f.get("severity"), 0) + 1
    tally = ", ".join(f"{counts[s]} {s}" for s in _SEVERITY_RANK if counts.get(s))
    md += [f"{tally or 'no findings'}; exit code {report.get('exit_code', '')}", ""]
    where = "file" if "files" in report else "stage"  # an audio report: files
    md += [
        f"| {where} | check | severity | freq Hz | level dB | message |",
        "|---|---|---|---|---|---|",
    ]
    for (stage, check), findings in _grouped(report).items():
        for f in findings:
            severity = f.get("severity", "")
            shown = f"**{severity}**" if severity in ("fail", "warn") else severity
            cells = [stage, check, shown, _fmt(f.get("freq_hz")), _fmt(f.get("level_db"))]
            cells.append(f.get("message", ""))
            md.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    if report.get("notes"):
        md += [""] + [f"- {_md_cell(n)}" for n in report["notes"]]
    if summary_png:
        md += ["", f"Summary figure: `{summary_png}`"]
    return text, "\n".join(md) + "\n"


def check_step_summary(env: Mapping[str, str] = os.environ) -> None:
    """Refuse, before any work, a ``GITHUB_STEP_SUMMARY`` that names anything but a regular
    file or a new file in a writable folder (a FIFO would block the run forever)."""
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        check_writable_parent(path, "GITHUB_STEP_SUMMARY")
        return
    except OSError as exc:
        raise UsageError(f"GITHUB_STEP_SUMMARY {shown(path)}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"GITHUB_STEP_SUMMARY {shown(path)}: is {describe_kind(mode)}, not a file")


def write_step_summary(markdown: str, env: Mapping[str, str] = os.environ) -> bool:
    """Append ``markdown`` to the file named by ``GITHUB_STEP_SUMMARY``.

    The file is opened non-blocking and must be a regular file (checked on the open
    descriptor), so nothing put there after :func:`check_step_summary` can hang the run.
    Returns False (writing nothing) when the variable is unset or empty, or the file cannot
    be written; the caller may warn, but a summary is never worth failing the gate over.
    """
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        data = (markdown if markdown.endswith("\n") else markdown + "\n").encode()
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def github_actions(env: Mapping[str, str] = os.environ) -> bool:
    """True when running as a GitHub Actions step (``GITHUB_ACTIONS == "true"``)."""
    return env.get("GITHUB_ACTIONS") == "true"
