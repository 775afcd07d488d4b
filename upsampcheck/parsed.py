"""Bounded parsing of the JSON and TOML that users and other machines hand the tool.

Baselines, ``report.json`` files given to ``trend``, stack specs, ``--config`` files, the
``[tool.upsampcheck]`` table of a ``pyproject.toml`` and ``--arch-kwargs`` all go through here.
Every document has a bound before anything uses it:

==================  ===============================  =========================================
what                bound                            why
==================  ===============================  =========================================
file size           :data:`MAX_BYTES` (32 MiB)       the largest report is a few hundred KB
nesting             :data:`MAX_DEPTH` (64) levels    the deepest real document has 6; deeper
                                                     ones make recursive code overflow
integers            magnitude below 2**64            the largest seed is 2**64 - 1; any such
                                                     integer converts to a finite float
integer digits      never converted past 4,300       Python refuses longer ones (the limit on
                                                     quadratic ``int()``)
==================  ===============================  =========================================

JSON nesting is counted by a linear scan before the parser runs; TOML's parser is stopped by
the recursion limit and the parsed tree is then walked (iteratively) for the same bounds. Each
refusal is a one-line :class:`~.errors.UsageError` that names the document and the key path
(``layer[2].stride``). Whether a number is finite and in range for its field is the caller's
check: a field knows its own range.
"""

from __future__ import annotations

import json
import os
import re
import sys
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO

from .errors import UsageError
from .paths import check_input_file, shown

MAX_DEPTH = 64
INT_LIMIT = 2**64
MAX_BYTES = 32 * 2**20
INT_DIGITS = sys.get_int_max_str_digits() or 4300
"""Python refuses ``int()`` of a decimal string longer than this (3.11's default: 4,300)."""

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DIGIT_RUN = re.compile(r"[0-9_]+")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


class _BigInt(str):
    """A JSON integer literal too long to convert safely; refused by :func:`check_tree`."""


def _parse_int(text: str) -> int | _BigInt:
    return int(text) if len(text) <= 24 else _BigInt(text)


def key_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """``layer[2].stride`` from ``("layer", 2, "stride")``; odd keys quoted and escaped, long
    ones cut, so the path is always one short printable line."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part) and len(part) <= 64:
            out += f".{part}" if out else part
        else:
            quoted = json.dumps(part if len(part) <= 64 else part[:64] + "...")
            out += f"[{quoted}]"
    return out or "(top level)"


def describe(value: Any) -> str:
    """A value for an error message, short and on one line."""
    if isinstance(value, _BigInt):
        return f"an integer of {len(value.lstrip('+-'))} digits"
    if isinstance(value, int) and abs(value) >= INT_LIMIT:
        if value.bit_length() > 14000:  # str() itself would refuse past 4,300 digits
            return f"an integer of more than {INT_DIGITS} digits"
        return f"an integer of {len(str(abs(value)))} digits"
    if isinstance(value, dict):
        return "an object" if value else "an empty object"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_tree(doc: Any, where: str) -> Any:
    """``doc`` itself after checking every value in it: nested at most :data:`MAX_DEPTH` deep,
    every integer below :data:`INT_LIMIT` in magnitude; else a :class:`UsageError` naming
    ``where`` and the key path. Iterative, so no document can overflow the stack here."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            if len(path) >= MAX_DEPTH:
                raise UsageError(
                    f"{where}: key {key_path(path)}: nested too deeply (more than {MAX_DEPTH} "
                    "levels)"
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, (*path, k)) for k, v in reversed(list(items)))
        elif isinstance(value, _BigInt) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT_LIMIT
        ):
            raise UsageError(
                f"{where}: key {key_path(path)}: {describe(value)} is out of range "
                "(integers here stay below 2**64 in magnitude)"
            )
    return doc


def json_depth(text: str) -> int:
    """How deep ``text``'s brackets nest, outside strings (linear; a heuristic on text that is
    not valid JSON, which the parser then refuses)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    steps = (1 if c in "[{" else -1 for c in brackets)
    return max(accumulate(steps), default=0)


def load_json_bounded(text: str, where: str) -> Any:
    """Parse JSON text within the bounds of this module; ``where`` names it in errors."""
    if json_depth(text) > MAX_DEPTH:
        raise UsageError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels)")
    try:
        doc = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise UsageError(f"{where}: not valid JSON: {type(exc).__name__}") from None
    return check_tree(doc, where)


CHUNK = 1 << 16


def read_at_most(fh: BinaryIO, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``fh``, read in 64 KiB chunks: ``fh.read(limit)`` would
    allocate ``limit`` bytes up front (32 MiB for every small pyproject.toml: it was most of
    the audio command's peak memory)."""
    parts, size = [], 0
    while size < limit:
        chunk = fh.read(min(CHUNK, limit - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def read_text_bounded(
    path: os.PathLike | str, what: str, language: str = "JSON", limit: int = MAX_BYTES
) -> str:
    """A regular file's UTF-8 text, at most ``limit`` bytes (never a FIFO or device); errors
    start with ``what`` and the file, and call undecodable bytes "not valid ``language``"."""
    path = check_input_file(path, what)
    try:
        with open(path, "rb") as fh:
            data = read_at_most(fh, limit + 1)
    except OSError as exc:
        raise UsageError(f"{what} {shown(path)}: cannot read: {exc.strerror}") from None
    if len(data) > limit:
        raise UsageError(f"{what} {shown(path)}: larger than {limit // 2**20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{what} {shown(path)}: not valid {language}: not UTF-8 text (byte {exc.start})"
        ) from None


def read_json_bounded(path: os.PathLike | str, what: str) -> Any:
    """Read and parse a JSON file within the bounds; errors say ``what`` and the file."""
    return load_json_bounded(read_text_bounded(path, what), f"{what} {shown(path)}")


def _huge_integer_at(text: str) -> tuple[int, str] | None:
    """The line and key of the first decimal literal longer than :data:`INT_DIGITS`."""
    for run in _DIGIT_RUN.finditer(text):
        if len(run.group().replace("_", "")) > INT_DIGITS:
            start = text.rfind("\n", 0, run.start()) + 1
            line = text[start : run.start()]
            key = line.split("=", 1)[0].strip() if "=" in line else ""
            return text.count("\n", 0, run.start()) + 1, key
    return None


def load_toml_bounded(text: str, where: str, check: bool = True) -> dict[str, Any]:
    """Parse TOML text within the bounds of this module; ``where`` names it in errors.
    ``check=False`` leaves the tree walk (:func:`check_tree`) to the caller, for a document
    of which only one table is the tool's (``pyproject.toml``)."""
    import tomllib

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where}: not valid TOML: {str(exc).splitlines()[0]}") from None
    except (RecursionError, MemoryError):
        raise UsageError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels)") from None
    except ValueError:  # int() of a literal beyond Python's digit limit
        found = _huge_integer_at(text)
        line, key = found if found else (0, "")
        at = f"line {line}" + (f", key {key[:64]}" if key else "")
        raise UsageError(
            f"{where}: {at}: an integer of more than {INT_DIGITS} digits is out of range "
            "(integers here stay below 2**64 in magnitude)"
        ) from None
    return check_tree(doc, where) if check else doc


def read_toml_bounded(path: os.PathLike | str, what: str = "") -> dict[str, Any]:
    """Read and parse a TOML file within the bounds; errors name the file (after ``what``)."""
    prefix = f"{what} " if what else ""
    text = read_text_bounded(path, what or "TOML file", "TOML")
    return load_toml_bounded(text, f"{prefix}{shown(Path(path))}")
