"""report.json's text: indented two spaces like ``json.dumps(indent=2)``, but every list or
object of plain values (numbers, strings, booleans, null) on one line: a curve, a line's
record.

A model's report holds curves and line tables of hundreds of thousands of numbers (BigVGAN:
220,000). ``json.dumps`` with an indent runs its pure-Python encoder over each of them, one
per line (1 s and 7.5 MB there); the lists here go through the C encoder in one call each,
and the file is a third of the size. The values, and so ``json.load`` of the text, are the
same.
"""

from __future__ import annotations

import json
from typing import Any

_compact = json.JSONEncoder(separators=(", ", ": ")).encode


def json_text(value: Any, indent: str = "") -> str:
    """``value`` as JSON text, nested containers indented by two spaces per level and lists of
    plain values kept on one line; no trailing newline."""
    inner = indent + "  "
    if plain(value):
        return _compact(value)
    if isinstance(value, dict):
        items = (f"{inner}{json.dumps(str(k))}: {json_text(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, (list, tuple)):
        return "[\n" + ",\n".join(inner + json_text(v, inner) for v in value) + f"\n{indent}]"
    return _compact(value)


def plain(value: Any) -> bool:
    """Whether ``value`` is a scalar, or a list or object of scalars only."""
    if isinstance(value, dict):
        return all(isinstance(k, str) for k in value) and not any(
            isinstance(v, (dict, list, tuple)) for v in value.values()
        )
    if isinstance(value, (list, tuple)):
        return not any(isinstance(v, (dict, list, tuple)) for v in value)
    return True
