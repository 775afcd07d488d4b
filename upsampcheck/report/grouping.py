"""Identical stages, findings and notes, grouped so a model that repeats one upsampler dozens
of times (BigVGAN) reads in a screen.

- Stages whose kind, factor, input rate and measured numbers agree are drawn once in the
  figures; the others point to the first of them (:func:`identical_to`).
- In the text summary, findings that differ only by their stage and their numbers (same check,
  severity, message with the stage's name and every number taken out, same cause and fix) are
  one :class:`Entry`; so are notes that differ only by a stage's name and numbers
  (:func:`group_notes`). An entry names all its stages (:mod:`.name_sets`) and writes each
  number that differs as the range ``low to high``, with the worst stage named.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .name_sets import compact_names

T = TypeVar("T")

MIN_GROUP = 3
"""Groups of fewer members are written one by one: two lines read faster than a pattern."""
STAGE = "\x00"
"""Where a stage's name stood in a template."""
NUMBER = re.compile(r"(?<![\w.:#/])-?\d+(?:\.\d+)?(?!\w|\.\w)")
"""A number as the report prints one: not part of a name (``ups.0``, ``x2``, ``fs/8``)."""
LOWER_IS_WORSE = {"filtering"}
"""Checks whose ``level_db`` is worse when lower (the response at 0.9 of Nyquist)."""


def signature(stage: Any) -> tuple:
    """What makes two stages indistinguishable in the report: kind, factor, input rate, and
    every measured number to the precision the report prints (0.1 dB, 0.1 Hz)."""
    m = stage.measurement
    return (
        stage.kind,
        float(stage.factor),
        round(float(stage.fs_in_hz), 3),
        round(m.noise_gain_db, 1),
        tuple(sorted((k, None if v is None else round(v, 1)) for k, v in m.response_db.items())),
        tuple((round(ln.freq_hz, 1), round(ln.level_db, 1), ln.probe) for ln in m.lines),
        round(m.dc_db, 1),
        None if m.image_rejection_db is None else round(m.image_rejection_db, 1),
    )


def group_by(items: Iterable[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """``items`` with equal ``key``, in order of their first member (each group in order)."""
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.values())


def identical_to(stages: list[Any]) -> dict[str, str]:
    """``{stage name: name of the first identical stage before it}`` for every repeat: the same
    measured numbers, or the same operation with the same weights at the same rate (a model's
    ``identical_stages`` groups, such as BigVGAN's 73 anti-aliasing filters: their in-model
    taps differ a little, their figures would not tell them apart)."""
    names = {stage.name for stage in stages}
    repeats = {
        stage.name: group[0]
        for stage in stages
        if (group := getattr(stage, "details", {}).get("identical_stages"))
        and group[0] != stage.name
        and group[0] in names
    }
    rest = [stage for stage in stages if stage.name not in repeats]
    repeats |= {
        stage.name: group[0].name for group in group_by(rest, signature) for stage in group[1:]
    }
    return repeats


def name_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """A regex for any of ``names`` standing alone (not inside a longer name: ``ups.0`` is
    not found in ``ups.0.conv`` or ``ups.0:conv_transpose1d``), longest first."""
    names = sorted({n for n in names if n}, key=len, reverse=True)
    if not names:
        return None
    either = "|".join(map(re.escape, names))
    return re.compile(rf"(?<![\w.:#])(?:{either})(?!\w|[.:#]\w)")


def template(text: str, name: str | None) -> tuple[str, tuple[str, ...]]:
    """``text`` with ``name`` as :data:`STAGE` and each number as ``{}``, and the numbers
    (as printed): ``("DC under silence: {} dB", ("10.6",))``."""
    pattern = name_pattern([name] if name else [])
    if pattern is not None:
        text = pattern.sub(STAGE, text)
    numbers = tuple(NUMBER.findall(text))
    return NUMBER.sub("{}", text.replace("{", "{{").replace("}", "}}")), numbers


def span(values: Sequence[str]) -> str:
    """One printed number, or ``"low to high"`` when they differ."""
    if len(set(values)) == 1:
        return values[0]
    ordered = sorted(values, key=float)
    return f"{ordered[0]} to {ordered[-1]}"


def fill(text: str, rows: Sequence[Sequence[str]], stage: str) -> str:
    """A template back to text, for a group whose members' numbers are ``rows``: each number
    slot the :func:`span` of its column, the stage slot ``stage``."""
    columns = zip(*rows, strict=True)
    return text.format(*(span(column) for column in columns)).replace(STAGE, stage)


@dataclass
class Entry:
    """One line of the summary: a finding (JSON form), or :data:`MIN_GROUP` or more that
    differ only by stage and numbers."""

    findings: list[dict[str, Any]]
    text: str
    numbers: list[tuple[str, ...]]
    noun: str = "stage"
    """What a finding's ``stage`` names: ``"file"`` in an audio report."""

    @property
    def stages(self) -> list[str]:
        return [f["stage"] for f in self.findings]

    @property
    def first(self) -> dict[str, Any]:
        return self.findings[0]

    @property
    def grouped(self) -> bool:
        return len(self.findings) > 1

    def where(self) -> str:
        """The stage, or ``"N stages: <patterns>"``."""
        if not self.grouped:
            return self.first["stage"]
        return f"{len(self.findings)} {self.noun}s: {compact_names(self.stages)}"

    def label(self) -> str:
        """A short way to point back at this entry: its stage, or its first and how many more."""
        if not self.grouped:
            return self.first["stage"]
        return f"{self.first['stage']} and {len(self.findings) - 1} more"

    def worst(self) -> dict[str, Any] | None:
        """The member with the worst level (the highest, the lowest for filtering), when the
        members' levels differ."""
        rated = [f for f in self.findings if f["level_db"] is not None]
        if len({f["level_db"] for f in rated}) < 2:
            return None
        sign = -1 if self.first["check"] in LOWER_IS_WORSE else 1
        return max(rated, key=lambda f: sign * f["level_db"])

    def message(self, name_worst: bool = True) -> str:
        """The message; for a group, with ranges where the numbers differ and (``name_worst``)
        the worst stage."""
        if not self.grouped:
            return self.first["message"]
        text = fill(self.text, self.numbers, f"each {self.noun}")
        worst = self.worst()
        if worst is not None and name_worst:
            text += f"; worst {worst['level_db']:.1f} dB on {worst['stage']}"
        return text

    def cause(self) -> tuple[str, str]:
        """Cause and fix, the stage's name in them read as "the stage" for a group."""
        f = self.first
        if not self.grouped:
            return f["cause"], f["fix"]
        return fill_text(f["cause"], f["stage"]), fill_text(f["fix"], f["stage"])


def fill_text(text: str, name: str) -> str:
    """``text`` with ``name`` read as "the stage"."""
    pattern = name_pattern([name])
    return text if pattern is None else pattern.sub("the stage", text)


def finding_key(finding: dict[str, Any]) -> tuple:
    """Findings with equal keys differ only by stage and numbers."""
    text, numbers = template(finding["message"], finding["stage"])
    name = finding["stage"]
    return (
        finding["check"],
        finding["severity"],
        text,
        len(numbers),
        fill_text(finding["cause"], name),
        fill_text(finding["fix"], name),
    )


def clusters(
    items: Sequence[T], key: Callable[[T], Hashable], min_size: int = MIN_GROUP
) -> list[list[T]]:
    """``items`` as groups of equal ``key`` with at least ``min_size`` members and single
    items, each where its first member was: nothing moves unless it joins a group."""
    indexed = list(enumerate(items))
    out: list[list[tuple[int, T]]] = []
    for group in group_by(indexed, lambda pair: key(pair[1])):
        out.extend([group] if len(group) >= min_size else [[pair] for pair in group])
    out.sort(key=lambda group: group[0][0])
    return [[item for _, item in group] for group in out]


def group_findings(findings: list[dict[str, Any]], min_size: int = MIN_GROUP) -> list[Entry]:
    """``findings`` (report.json's, in reading order) as entries (:func:`clusters`): every
    finding is in exactly one entry."""
    entries = []
    for group in clusters(findings, finding_key, min_size):
        shapes = [template(f["message"], f["stage"]) for f in group]
        entries.append(Entry(group, shapes[0][0], [numbers for _, numbers in shapes]))
    return entries


def group_notes(
    notes: list[str], names: Iterable[str], min_size: int = MIN_GROUP, noun: str = "stage"
) -> list[str]:
    """``notes`` with those that differ only by the one stage they name (one of ``names``) and
    their numbers written once, where the first was (:func:`clusters`): the name becomes
    ``N stages <patterns>`` (``noun``: ``file`` for an audio report) and differing numbers
    become ranges."""
    pattern = name_pattern(names)
    keyed = []  # (key, note, template, stage, numbers)
    for i, note in enumerate(notes):
        found = set(pattern.findall(note)) if pattern else set()
        if len(found) != 1:  # no stage, or several: as it is
            keyed.append(((i,), note, note, "", ()))
            continue
        (name,) = found
        text, numbers = template(note, name)
        keyed.append(((text, len(numbers)), note, text, name, numbers))
    out = []
    for group in clusters(keyed, lambda k: k[0], min_size):
        if len(group) == 1:
            out.append(group[0][1])
            continue
        where = f"{len(group)} {noun}s {compact_names([k[3] for k in group])}"
        out.append(fill(group[0][2], [k[4] for k in group], where))
    return out
