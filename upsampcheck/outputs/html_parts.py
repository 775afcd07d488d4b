"""Pieces of the HTML report: the style sheet, escaping, and elements that carry their content
inline (PNG figures and WAV clips as ``data:`` URIs), so the page needs no other file, no
script and no network. Every function returns a string of HTML; text is always escaped.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape

from .clips import Clip, wav_bytes

STYLE = """
:root { --fail: #b3261e; --warn: #a06000; --info: #1d5f8a; --pass: #2e7d32; --line: #d8d8d8; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1b1b;
  max-width: 1180px; margin: 0 auto; padding: 1.2rem 1.5rem 4rem; background: #fff; }
h1 { font-size: 1.6rem; margin: .2rem 0 .4rem; } h2 { font-size: 1.25rem; margin-top: 2rem;
  border-bottom: 1px solid var(--line); padding-bottom: .2rem; } h3 { font-size: 1.05rem; }
.verdict { display: inline-block; padding: .25rem .8rem; border-radius: .3rem; color: #fff;
  font-weight: 700; letter-spacing: .05em; }
.verdict.fail { background: var(--fail); } .verdict.pass { background: var(--pass); }
.meta { color: #555; font-size: .9rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left;
  vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
tr.group th { background: #eaeef2; text-align: left; }
.sev { font-weight: 700; text-transform: uppercase; font-size: .8rem; }
.sev.fail { color: var(--fail); } .sev.warn { color: var(--warn); }
.sev.info { color: var(--info); } .sev.pass { color: var(--pass); }
figure { margin: .8rem 0; } figure img { max-width: 100%; height: auto;
  border: 1px solid var(--line); } figcaption { font-size: .85rem; color: #555; }
.scroll { max-height: 80vh; overflow-y: auto; border: 1px solid var(--line); }
.scroll img { border: 0; }
details { border: 1px solid var(--line); border-radius: .3rem; padding: .2rem .8rem;
  margin: .6rem 0; } summary { cursor: pointer; font-weight: 600; padding: .3rem 0; }
.clips { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr));
  gap: .6rem 1rem; } .clip { font-size: .85rem; } .clip audio { width: 100%; }
.note { color: #555; font-size: .9rem; } code { background: #f4f4f4; padding: 0 .2rem; }
ol.causes li { margin-bottom: .4rem; }
"""


def text(value: object) -> str:
    """Escaped text (``None`` as an empty string)."""
    return "" if value is None else escape(str(value), quote=True)


def number(value: float | None, digits: int = 1, unit: str = "") -> str:
    """A number with fixed ``digits`` (and a unit), or an em dash when missing."""
    if value is None:
        return "—"
    return f"{value:.{digits}f}{' ' + unit if unit else ''}"


def hertz(value: float | None) -> str:
    """A frequency in Hz with one decimal, the precision used everywhere in the report."""
    return "—" if value is None else f"{value:,.1f} Hz"


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def image(png: bytes, alt: str, caption: str = "", scroll: bool = False) -> str:
    """A PNG as an inline ``<figure>``; ``scroll``: inside a box that scrolls (tall figures)."""
    img = f'<img src="{data_uri("image/png", png)}" alt="{text(alt)}">'
    if scroll:
        img = f'<div class="scroll">{img}</div>'
    cap = f"<figcaption>{text(caption)}</figcaption>" if caption else ""
    return f"<figure>{img}{cap}</figure>"


def gain_words(clip: Clip) -> str:
    """How loud the clip plays compared to the truth, in plain words."""
    how = "normalised, mean removed" if clip.mean_removed else "normalised"
    if abs(clip.gain_db) < 0.05:
        return f"{how}, at true level" if clip.mean_removed else "true level"
    louder = "louder" if clip.gain_db > 0 else "quieter"
    return f"{how}: {abs(clip.gain_db):.1f} dB {louder} than true level"


def audio(clip: Clip, stage_rate: float | None = None) -> str:
    """An ``<audio controls>`` player with the clip's WAV as a data URI, and what it is."""
    rate = round(clip.sample_rate)
    where = f"{rate:,} Hz"
    if stage_rate is not None and abs(stage_rate - clip.sample_rate) > 0.5:
        where = f"stage rate {stage_rate:,.2f} Hz, played at {rate:,} Hz (band-limited resampling)"
    seconds = clip.samples.shape[-1] / clip.sample_rate
    src = data_uri("audio/wav", wav_bytes(clip))
    return (
        f'<div class="clip"><div><b>{text(clip.title)}</b> — {text(gain_words(clip))}; '
        f"{seconds:.2f} s at {text(where)}</div>"
        f'<audio controls preload="none" data-clip="{text(clip.name)}" '
        f'data-rate="{rate}" src="{src}"></audio></div>'
    )


def table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int] = frozenset()):
    """A table from already-escaped cells; columns in ``numeric`` are right-aligned."""
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        if isinstance(row, str):  # a full-width group row, already HTML
            out.append(row)
            continue
        cells = (
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def group_row(label: str, columns: int) -> str:
    return f'<tr class="group"><th colspan="{columns}">{label}</th></tr>'


def severity(value: str) -> str:
    return f'<span class="sev {text(value)}">{text(value)}</span>'


PAGE_TAIL = "</body></html>\n"


def page_head(title: str) -> str:
    """The document up to ``<body>``: inline style, no script."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head><body>\n"
    )


def page(title: str, body: Sequence[str]) -> str:
    """The whole document: :func:`page_head`, the body's parts, :data:`PAGE_TAIL`."""
    return page_head(title) + "".join(f"{part}\n" for part in body) + PAGE_TAIL
