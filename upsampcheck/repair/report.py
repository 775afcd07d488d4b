"""A repair's report: ``repair.json``, the terminal summary, ``repair.html`` (the figures and
the silence response before and after, at one gain so the difference is heard), and the
folder: ``before/`` and ``after/`` are full report folders of the two models."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs.clips import PEAK, Clip
from ..outputs.html_parts import audio, page, table, text
from ..outputs.json_text import json_text
from .compare import GONE_DB, drop_db


def level(value: float | None) -> str:
    """A line's level in words: ``-12.3 dB``, or gone below the floor."""
    return f"< {GONE_DB:.0f} dB (gone)" if value is None else f"{value:.1f} dB"


def _db(value: float | None, unit: str = " dB") -> str:
    return "exact (no change)" if value is None else f"{value:.2f}{unit}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The terminal summary of ``repair.json``'s ``data``."""
    out = []
    for stage in data["stages"]:
        out.append(
            f"{stage['name']} ({stage['kind']}, x{stage['stride']}): kernel change "
            f"{_db(stage['kernel_change_db'])}; response change (measured) max "
            f"{_num(stage['response_change_max_db'])} dB, RMS "
            f"{_num(stage['response_change_rms_db'])} dB; (kernel, inputs independent) max "
            f"{stage['kernel_response_change_max_db']:.3f} dB, "
            f"RMS {stage['kernel_response_change_rms_db']:.3f} dB"
        )
        for row in stage["lines"]:
            out.append(
                f"  {row['probe']:<8} {row['freq_hz']:>10.2f} Hz  {level(row['before_db'])} -> "
                f"{level(row['after_db'])}"
            )
    for row in data["output_lines"]:
        out.append(
            f"output {row['probe']:<8} {row['freq_hz']:>10.2f} Hz ({row['origin']}): "
            f"{level(row['before_db'])} -> {level(row['after_db'])}"
        )
    for item in data["beyond_reach"]:
        out.append(
            f"beyond reach: {item['where']} {item['freq_hz']:.2f} Hz ({item['probe']}) at "
            f"{item['level_db']:.1f} dB: {item['reason']}"
        )
    if data["residue"]:
        worst = max(item["level_db"] for item in data["residue"])
        out.append(
            f"{len(data['residue'])} DC/silence line(s) left at the model dtype's round-off "
            f"(loudest {worst:.1f} dB)"
        )
    for item in data["refused"]:
        out.append(f"refused: {item['reason']}")
    snr = data["output_snr_db"]
    out.append(f"output change on the multitone: SNR {'inf' if snr is None else f'{snr:.2f}'} dB")
    out.append(f"verdict: {data['verdict_before'].upper()} before, {data['verdict'].upper()} after")
    return out


def silence_clips(result) -> list[tuple[str, Clip, Clip]]:
    """For each repaired stage and the output: the silence response before and after, mean
    removed, both at the gain that brings the one before to :data:`PEAK`."""
    from ..report.listening import band_limited_upsample, clip_stem, play_rate_factor

    sources = []
    after = {s.name: s for s in result.after.stages}
    for stage in result.before.stages:
        if stage.name in {t.name for t in result.ties} and stage.name in after:
            pair = (stage.measurement.excerpts, after[stage.name].measurement.excerpts)
            sources.append((stage.name, *pair, stage.fs_out_hz))
    if result.before.output_excerpts and result.after.output_excerpts:
        pair = (result.before.output_excerpts, result.after.output_excerpts)
        sources.append(("output", *pair, result.before.sample_rate_hz))
    clips = []
    for name, old, new, rate in sources:
        if "silence" not in old or "silence" not in new:
            continue
        factor = play_rate_factor(rate)
        a, b = (band_limited_upsample(np.asarray(x["silence"], float), factor) for x in (old, new))
        a, b = a - a.mean(), b - b.mean()
        top = float(np.abs(a).max()) if a.size else 0.0
        gain_db = min(20 * math.log10(PEAK / top), 120.0) if top > 0 else 0.0
        gain = 10 ** (gain_db / 20)
        stem = clip_stem(name)
        title = f"{name}: silence response"
        rate_out = rate * factor
        clips.append((
            name,
            Clip(f"{stem}_silence_before", f"{title} before", a * gain, rate_out, gain_db, True),
            Clip(f"{stem}_silence_after", f"{title} after", b * gain, rate_out, gain_db, True),
        ))  # fmt: skip
    return clips


def snr_words(snr: float | None) -> str:
    return "no change (identical outputs)" if snr is None else f"{snr:.2f} dB"


def drop_words(row: dict) -> str:
    """The drop in dB; at least that much (``≥``) for a line gone below the floor."""
    drop = drop_db(row)
    if drop is None:
        return "-"
    return f"{'≥ ' if row['after_db'] is None else ''}{drop:.1f}"


def html_page(data: dict[str, Any], clips: list) -> str:
    """``repair.html``: verdicts, per-stage figures, lines before and after, what is beyond
    reach or refused, and the silence responses to hear."""
    body = [
        "<h1>upsampcheck repair</h1>",
        f"<p>Verdict: <b>{text(data['verdict_before'])}</b> before, "
        f"<b>{text(data['verdict'])}</b> after. Output SNR on the multitone (after vs before): "
        f"{snr_words(data['output_snr_db'])}. The two models' full reports: "
        '<a href="before/report.html">before</a>, <a href="after/report.html">after</a>.</p>',
    ]
    rows = [
        [text(s["name"]), text(s["kind"]), str(s["stride"]), text(_db(s["kernel_change_db"])),
         _num(s["response_change_max_db"]), _num(s["response_change_rms_db"]),
         _num(s["kernel_response_change_max_db"]), _num(s["kernel_response_change_rms_db"])]
        for s in data["stages"]
    ]  # fmt: skip
    head = [
        "stage", "kind", "stride", "kernel change", "response change max dB (measured)",
        "RMS dB (measured)", "max dB (kernel, inputs independent)", "RMS dB (kernel)",
    ]  # fmt: skip
    body += ["<h2>Repaired stages</h2>", table(head, rows, {2, 4, 5, 6, 7})]
    lines = [
        [text(where), text(r["probe"]), f"{r['freq_hz']:.2f}", text(level(r["before_db"])),
         text(level(r["after_db"])), drop_words(r)]
        for where, group in [(s["name"], s["lines"]) for s in data["stages"]]
        + [("output", data["output_lines"])]
        for r in group
    ]  # fmt: skip
    head = ["where", "probe", "Hz", "before", "after", "drop dB"]
    body += ["<h2>Lines before and after</h2>", table(head, lines, {2, 5})]
    if data["beyond_reach"]:
        rows = [
            [text(b["where"]), f"{b['freq_hz']:.2f}", text(b["probe"]), f"{b['level_db']:.1f}",
             text(b["reason"])]
            for b in data["beyond_reach"]
        ]  # fmt: skip
        body += [
            "<h2>Beyond the remedy's reach</h2>",
            table(["where", "Hz", "probe", "dB", "why"], rows),
        ]
    if data["refused"]:
        body += ["<h2>Refused</h2>", *(f"<p>{text(r['reason'])}</p>" for r in data["refused"])]
    if clips:
        body.append("<h2>Silence response before and after (same gain)</h2>")
        for _, before, after in clips:
            body += [audio(before), audio(after)]
    body += [f"<p>{text(n)}</p>" for n in data["notes"]]
    return page("upsampcheck repair", body)


def fill_repair_folder(result, data: dict[str, Any], folder: Path, plots: bool) -> None:
    """``before/`` and ``after/`` (full report folders), ``repair.json``, ``repair.txt`` and,
    with ``plots``, ``repair.html``, into the staging ``folder``."""
    from ..outputs.folder import fill_report_folder
    from ..outputs.safe_folder import write_marker

    for name, report in (("before", result.before), ("after", result.after)):
        fill_report_folder(report, report.to_json(), folder / name, plots)
        write_marker(folder / name)
    (folder / "repair.json").write_text(json_text(data) + "\n")
    (folder / "repair.txt").write_text("\n".join(summary_lines(data)) + "\n")
    if plots:
        (folder / "repair.html").write_text(html_page(data, silence_clips(result)))
