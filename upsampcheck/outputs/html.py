"""``report.html``: one self-contained page to look at and listen to, and ``audio/*.wav``.

The page is built from three things only, so any report can use it (a layer, a stack, a
model, a generated audio file): the report's JSON (``report.json``), the PNG figures already
in the report folder, and clips to hear (:class:`~upsampcheck.outputs.clips.Clip`) grouped by
where they belong::

    parts = page_parts(data, folder, {"2:transposed": [clip, ...], "output": [...],
                                      "quiet passage": [...]})

A group whose key is a stage name is played in that stage's section, ``"output"`` in the
output's, any other key gets a section of its own. Figures and clips are embedded as
``data:`` URIs; the page has no script and fetches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..measure.lines import FLOOR_DB
from ..report.findings import SEVERITIES
from . import html_parts as h
from .clips import Clip, wav_bytes
from .names import SUMMARY_PNG, file_stems, spectrogram_png

PROBE_WORDS = {
    "noise": "noise-like probe (what the stage adds to silence)",
    "silence": "silence",
    "dc": "DC (a constant input)",
    "sweep": "exponential sine sweep",
    "tone": "in-band tone at fs_in/8",
}


def page_parts(
    data: Mapping[str, Any],
    folder: Path,
    clips: Mapping[str, Sequence[Clip]],
    notes: Sequence[str] = (),
    repeats: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """The page for a report's JSON ``data``, piece by piece (figures are read from ``folder``;
    ``repeats`` maps a stage to an identical earlier one whose figures stand for it). Each
    section is made as it is written, so a page with many embedded figures and clips is never
    held whole (it was the audio command's peak)."""
    subject = data.get("subject") or {}
    yield h.page_head(f"upsampcheck: {subject.get('kind', '')} {subject.get('name', '')}")
    for part in _body(data, folder, clips, notes, repeats or {}):
        yield part
        yield "\n"
    yield h.PAGE_TAIL


def _body(
    data: Mapping[str, Any],
    folder: Path,
    clips: Mapping[str, Sequence[Clip]],
    notes: Sequence[str],
    repeats: Mapping[str, str],
) -> Iterator[str]:
    """The page's sections in order, each one made when it is asked for."""
    stages = list(data.get("stages") or [])
    names = [s["name"] for s in stages]
    stems = dict(zip(names, file_stems(names), strict=True))
    yield header(data)
    yield from how_to_read(data, clips)
    summary = folder / SUMMARY_PNG
    if summary.is_file():
        yield "<h2>Summary</h2>"
        yield (
            h.image(
                summary.read_bytes(),
                "summary figure",
                "Each file's long-term averaged spectrum in dB re its RMS: the program floor "
                "dashed, the inferred grid dotted, lines locked to the sample clock circled."
                if "files" in data
                else "Rows: stages (identical ones, or the same op with the same weights at one "
                "rate, drawn once). Columns: each probe's averaged spectrum in dB re signal "
                "level, lines circled and coloured by the stage that "
                "introduced them; last column: the magnitude response across the input band.",
                scroll=True,
            )
        )
    causes: dict[tuple[str, str], int] = {}
    yield findings_section(data, causes)
    dropped, notes = split_notes(notes, {*names, "output"} | set(clips))
    if "output" in data:
        yield (output_section(data, clips.get("output", ()), dropped.get("output", ())))
    if stages:
        yield "<h2>Stages</h2>"
    for stage in stages:
        yield (
            stage_section(
                stage,
                folder,
                stems[stage["name"]],
                clips.get(stage["name"], ()),
                repeats,
                data,
                dropped.get(stage["name"], ()),
            )
        )
    known = {s["name"] for s in stages} | {"output"}
    if data.get("files") is not None:  # an audio report: a section per file, its clips in it
        from .html_audio import file_sections

        yield from file_sections(data, folder, clips, clip_grid)
        known |= {f["path"] for f in data["files"]}
    for key, group in clips.items():
        if key not in known and (group or dropped.get(key)):
            yield (
                f"<h2>Listen: {h.text(key)}</h2>" + clip_grid(group) + said(dropped.get(key, ()))
            )
    yield footer(data, notes)


def header(data: Mapping[str, Any]) -> str:
    subject = data.get("subject") or {}
    verdict = str(data.get("verdict", "")).lower()
    counts = {}
    for f in data.get("findings") or []:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    order = [s for s in SEVERITIES if s in counts] + sorted(set(counts) - set(SEVERITIES))
    tally = ", ".join(f"{counts[s]} {s}" for s in order)  # always fail, warn, info, pass
    tool, env = data.get("tool") or {}, data.get("environment") or {}
    versions = {k: v for k, v in env.items() if k not in ("device", "seed") and v}
    meta = " · ".join(
        [f"upsampcheck {tool.get('version', '')}"]
        + [f"{name} {version}" for name, version in versions.items()]
        + [f"{k} {env[k]}" for k in ("device", "seed") if env.get(k) is not None]
    )
    rate = data.get("sample_rate_hz")
    if rate:
        meta += f" · output rate {rate:,.0f} Hz"
    return (
        f"<h1>upsampcheck: {h.text(subject.get('kind', ''))} {h.text(subject.get('name', ''))}"
        f"</h1><p><span class='verdict {h.text(verdict)}'>{h.text(verdict.upper())}</span> "
        f"exit code {h.text(data.get('exit_code', ''))} · {h.text(tally)}</p>"
        f"<p class='meta'>{h.text(meta)}</p>"
    )


def how_to_read(data: Mapping[str, Any], clips: Mapping[str, Sequence[Clip]]) -> list[str]:
    if not data.get("stages"):
        return []
    return [
        "<p class='note'>Every level is in dB relative to the <i>signal level</i>: the RMS the "
        "stage gives the noise-like probe at the same input RMS. Tonal lines sit on multiples "
        "of a stage's input rate (its grid). Normalised clips are amplified so a faint buzz "
        "is audible; the gain is written next to each player. Use headphones at a low volume "
        "first.</p>"
    ]


def findings_section(data: Mapping[str, Any], causes: dict[tuple[str, str], int]) -> str:
    """All findings, grouped by stage in report order (then the output, then the rest), each
    failure or warning pointing to its cause and fix, every distinct text listed once."""
    order = [s["name"] for s in data.get("stages") or []] + ["output"]
    groups: dict[str, list] = {}
    for f in data.get("findings") or []:
        groups.setdefault(f["stage"], []).append(f)
    names = sorted(groups, key=lambda n: (order.index(n) if n in order else len(order), n))
    rows: list = []
    for name in names:
        rows.append(h.group_row(h.text(name), 6))
        for f in groups[name]:
            ref = ""
            if f["severity"] in ("fail", "warn") and (f.get("cause") or f.get("fix")):
                key = (f.get("cause", ""), f.get("fix", ""))
                causes.setdefault(key, len(causes) + 1)
                ref = f"<a href='#cause{causes[key]}'>[{causes[key]}]</a>"
            rows.append(
                [
                    h.severity(f["severity"]),
                    h.text(f["check"]),
                    "" if f.get("freq_hz") is None else h.hertz(f["freq_hz"]),
                    h.number(f.get("level_db"), 1, "dB") if f.get("level_db") is not None else "",
                    h.text(f["message"]),
                    ref,
                ]
            )
    out = [
        "<h2>Findings</h2>",
        h.table(["", "check", "frequency", "level", "finding", "why"], rows, {2, 3}),
    ]
    if causes:
        items = "".join(
            f"<li id='cause{n}'><b>cause:</b> {h.text(c)}<br><b>fix:</b> {h.text(fix)}</li>"
            for (c, fix), n in causes.items()
        )
        out.append(f"<h3>Causes and fixes</h3><ol class='causes'>{items}</ol>")
    return "".join(out)


def lines_table(lines: Sequence[Mapping[str, Any]]) -> str:
    """Lines sorted by frequency: level, prominence, probe, grid, the stage that made it."""
    rows = [
        [
            h.hertz(ln["freq_hz"]),
            h.number(ln["level_db"], 1, "dB"),
            h.number(ln.get("prominence_db"), 1, "dB"),
            h.text(ln["probe"]),
            "yes" if ln.get("on_grid") else "no",
            h.text(ln.get("introduced_by", "")),
        ]
        for ln in sorted(lines, key=lambda ln: (ln["freq_hz"], ln["probe"]))
    ]
    head = ["frequency", "level re signal", "prominence", "probe", "on grid", "introduced by"]
    return h.table(head, rows, {0, 1, 2})


def output_section(
    data: Mapping[str, Any], clips: Sequence[Clip], dropped: Sequence[str] = ()
) -> str:
    lines = data["output"].get("lines") or []
    out = ["<h2>Output</h2>"]
    if lines:
        made: dict[str, int] = {}
        for ln in lines:
            made[ln.get("introduced_by", "?")] = made.get(ln.get("introduced_by", "?"), 0) + 1
        tally = "; ".join(f"{h.text(k)}: {n}" for k, n in made.items())
        out.append(
            f"<p>{len(lines)} line(s) in the final output, each traced to the stage that "
            f"introduced it ({tally}).</p>"
        )
        out.append(lines_table(lines))
    else:
        out.append("<p>No tonal line in the final output.</p>")
    if clips or dropped:
        players = clip_grid(clips, data.get("sample_rate_hz"))
        out.append("<h3>Listen to the output</h3>" + players + said(dropped))
    return "".join(out)


def level_words(value: float | None, nothing: str = "none") -> str:
    """A level in dB, or ``nothing`` for a missing value or the numeric floor (−200 dB is
    "no energy at all", not a level to read)."""
    if value is None or value <= FLOOR_DB + 0.5:
        return nothing
    return h.number(value, 1, "dB")


def corner_words(corner: float | None, points: Mapping[str, float | None]) -> str:
    """The −3 dB point, and a warning when the response comes back above −3 dB further up
    (a rippling response, e.g. random weights, has no single corner)."""
    if corner is None:
        return "above −3 dB to fs_in/2"
    above = [
        float(p) for p, v in points.items() if v is not None and float(p) > corner and v > -3.0
    ]
    if above:
        return (
            f"first at {corner:.3f} of fs_in/2; the response rises above −3 dB again "
            f"(at {above[0]:g}): it ripples, so no single corner describes it"
        )
    return f"{corner:.3f} of fs_in/2"


def stage_numbers(stage: Mapping[str, Any]) -> str:
    """The stage's measured numbers as a two-column table."""
    filt = stage.get("filtering") or {}
    points = filt.get("response_db") or {}
    rows = [
        ["noise gain", h.number(stage.get("noise_gain_db"), 2, "dB")],
        *([f"response at {p} of fs_in/2", h.number(v, 2, "dB")] for p, v in points.items()),
        ["−3 dB point", corner_words(filt.get("minus3db_fraction"), points)],
        ["first image", h.number((stage.get("replicas") or {}).get("image_rejection_db"), 1, "dB")],
        ["DC under silence", level_words((stage.get("offset") or {}).get("dc_db"))],
        ["loudest line", level_words((stage.get("tonal") or {}).get("max_level_db"), "no line")],
    ]
    return h.table(["measured", "value"], rows, {1})


def stage_section(
    stage: Mapping[str, Any],
    folder: Path,
    stem: str,
    clips: Sequence[Clip],
    repeats: Mapping[str, str],
    data: Mapping[str, Any],
    dropped: Sequence[str] = (),
) -> str:
    """One stage: numbers, lines, figures, players (and why a player is missing)."""
    name = stage["name"]
    worst = {f["severity"] for f in data.get("findings") or [] if f["stage"] == name} & {
        "fail",
        "warn",
    }
    title = (
        f"{h.text(name)} — {h.text(stage.get('kind', ''))}, ×{stage['factor']:g}, "
        f"{stage['fs_in_hz']:,.2f} → {stage['fs_out_hz']:,.2f} Hz"
    )
    badge = " ".join(h.severity(s) for s in ("fail", "warn") if s in worst)
    out = [f"<details{' open' if worst else ''}><summary>{title} {badge}</summary>"]
    out.append(stage_numbers(stage))
    lines = (stage.get("tonal") or {}).get("lines") or []
    out.append(lines_table(lines) if lines else "<p>No tonal line.</p>")
    if name in repeats:
        out.append(
            f"<p class='note'>Identical to {h.text(repeats[name])} (same kind, rates and "
            "numbers): its figures stand for this stage.</p>"
        )
    for probe, words in PROBE_WORDS.items():
        png = folder / spectrogram_png(stem, probe)
        if png.is_file():
            out.append(h.image(png.read_bytes(), f"{name} {probe}", f"{name}: {words}"))
    if clips or dropped:
        out.append("<h3>Listen</h3>" + clip_grid(clips, stage["fs_out_hz"]) + said(dropped))
    out.append("</details>")
    return "".join(out)


def said(sentences: Sequence[str]) -> str:
    """Notes as paragraphs, each a sentence."""
    return "".join(f"<p class='note'>{h.text(n[:1].upper() + n[1:])}.</p>" for n in sentences)


def split_notes(notes: Sequence[str], keys: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``({key: [sentence]}, others)``: notes that begin with ``KEY: `` belong to that key's
    section (e.g. why a clip is missing), the others to the page's notes."""
    by_key: dict[str, list[str]] = {}
    others = []
    for note in notes:
        key = next((k for k in keys if note.startswith(k + ": ")), None)
        if key is None:
            others.append(note)
        else:
            by_key.setdefault(key, []).append(note[len(key) + 2 :])
    return by_key, others


def clip_grid(clips: Sequence[Clip], stage_rate: float | None = None) -> str:
    return "<div class='clips'>" + "".join(h.audio(c, stage_rate) for c in clips) + "</div>"


def footer(data: Mapping[str, Any], notes: Sequence[str]) -> str:
    out = []
    every = [*(data.get("notes") or []), *notes]
    if every:
        out.append("<h2>Notes</h2><ul>" + "".join(f"<li>{h.text(n)}</li>" for n in every) + "</ul>")
    thresholds = data.get("thresholds") or {}
    if thresholds:
        rows = [
            [h.text(k), h.text(v.get("value")), h.text(v.get("source"))]
            for k, v in thresholds.items()
        ]
        out.append("<h2>Thresholds in effect</h2>" + h.table(["key", "value", "from"], rows))
    return "".join(out)


def write_html(folder: Path, report: Any, data: Mapping[str, Any]) -> None:
    """``report.html`` and ``audio/*.wav`` into a report ``folder`` whose figures are drawn."""
    from ..report.grouping import identical_to

    clips, notes = report.clips()
    audio = folder / "audio"
    for group in clips.values():
        for clip in group:
            audio.mkdir(exist_ok=True)
            (audio / f"{clip.name}.wav").write_bytes(wav_bytes(clip))
    parts = page_parts(data, folder, clips, notes, identical_to(getattr(report, "stages", [])))
    with open(folder / "report.html", "w", encoding="utf-8") as fh:
        for part in parts:
            fh.write(part)
