"""Many stage names written compactly and losslessly, in brace patterns.

A BigVGAN-like model has 73 anti-aliasing stages named ``blocks.<b>.<r>.acts<a>.<d>.up:...``;
listed one by one they fill a screen. :func:`compact_names` writes a set of names as a few
patterns whose expansion is exactly that set (shell brace style, read by
:func:`expand_names`)::

    blocks.{0..2}.{0..2}.acts{1,2}.{0..2}.up:conv_transpose1d, act_post.up:conv_transpose1d

A name is cut into tokens (digit runs, word runs, punctuation); names with the same number of
tokens that differ in one word or digit token merge into one pattern with the alternatives in
braces, repeatedly, so a full grid of names (a Cartesian product) becomes one pattern. Inside
braces, three or more consecutive integers are written ``a..b``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

TOKEN = re.compile(r"\d+|[A-Za-z_]+|[^A-Za-z_\d]+")
WORD = re.compile(r"\w+")
SPECIAL = re.compile(r"[{},]")
"""Names holding these are written as they are (they would read as pattern syntax)."""

Pattern = tuple[frozenset[str], ...]


def compact_names(names: Sequence[str]) -> str:
    """``names`` (distinct, in the order they should be read) as ``", "``-separated brace
    patterns; each pattern sits where its first name did. ``expand_names`` gives the set back."""
    order = {name: i for i, name in enumerate(dict.fromkeys(names))}
    first_seen = _first_seen(order)
    by_length: dict[int, list[Pattern]] = {}
    plain = []
    for name in order:
        if SPECIAL.search(name):
            plain.append(((order[name],), name))
            continue
        tokens = TOKEN.findall(name)
        by_length.setdefault(len(tokens), []).append(tuple(frozenset([t]) for t in tokens))
    written = list(plain)
    for patterns in by_length.values():
        for pattern in _fewest(patterns):
            members = [order["".join(p)] for p in itertools.product(*pattern)]
            written.append(((min(members),), _write(pattern, first_seen)))
    return ", ".join(text for _, text in sorted(written))


def expand_names(text: str) -> list[str]:
    """The names a :func:`compact_names` text stands for, pattern by pattern."""
    names = []
    for pattern in _split_top_level(text):
        parts = re.split(r"(\{[^{}]*\})", pattern)
        choices = [_alternatives(p[1:-1]) if p.startswith("{") else [p] for p in parts]
        names.extend("".join(combo) for combo in itertools.product(*choices))
    return names


def _first_seen(order: dict[str, int]) -> dict[str, int]:
    """Each token's first appearance, to write word alternatives in reading order."""
    seen: dict[str, int] = {}
    for name in order:
        for token in TOKEN.findall(name):
            seen.setdefault(token, len(seen))
    return seen


def _fewest(patterns: list[Pattern]) -> list[Pattern]:
    """The merge (right to left or left to right) that leaves fewer patterns."""
    width = len(patterns[0])
    right_first = _merge(patterns, range(width - 1, -1, -1))
    left_first = _merge(patterns, range(width))
    return left_first if len(left_first) < len(right_first) else right_first


def _merge(patterns: list[Pattern], positions: Iterable[int]) -> list[Pattern]:
    """Merge patterns equal everywhere but at one word/digit position, until none merge. The
    patterns' expansions stay disjoint, and their union stays the names given."""
    positions = list(positions)
    changed = True
    while changed:
        changed = False
        for i in positions:
            buckets: dict[tuple, list[Pattern]] = {}
            for p in patterns:
                buckets.setdefault(p[:i] + p[i + 1 :], []).append(p)
            merged = []
            for bucket in buckets.values():
                union = frozenset().union(*(p[i] for p in bucket))
                if len(bucket) > 1 and all(WORD.fullmatch(t) for t in union):
                    merged.append(bucket[0][:i] + (union,) + bucket[0][i + 1 :])
                    changed = True
                else:
                    merged.extend(bucket)
            patterns = merged
    return patterns


def _write(pattern: Pattern, first_seen: dict[str, int]) -> str:
    return "".join(_write_choice(choice, first_seen) for choice in pattern)


def _write_choice(choice: frozenset[str], first_seen: dict[str, int]) -> str:
    if len(choice) == 1:
        return next(iter(choice))
    if all(t.isdigit() and str(int(t)) == t for t in choice):
        return "{" + ",".join(_runs(sorted(int(t) for t in choice))) + "}"
    return "{" + ",".join(sorted(choice, key=lambda t: first_seen[t])) + "}"


def _runs(numbers: list[int]) -> list[str]:
    """``[0, 1, 2, 5]`` -> ``["0..2", "5"]``: runs of three or more as ``a..b``."""
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.extend([f"{start}..{prev}"] if prev - start >= 2 else map(str, range(start, prev + 1)))
        if n is not None:
            start = prev = n
    return out


def _alternatives(inside: str) -> list[str]:
    out = []
    for part in inside.split(","):
        low, dots, high = part.partition("..")
        if dots and low.isdigit() and high.isdigit():
            out.extend(str(n) for n in range(int(low), int(high) + 1))
        else:
            out.append(part)
    return out


def _split_top_level(text: str) -> list[str]:
    """``text`` cut at the ``", "`` outside braces."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "{") - (ch == "}")
        if depth == 0 and text.startswith(", ", i):
            out.append(text[start:i])
            start = i + 2
    out.append(text[start:])
    return [p for p in out if p]
