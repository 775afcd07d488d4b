#!/usr/bin/env python3
"""The numbers-only fingerprint of a report.json: every number the report measured, with the
path of keys that leads to it, hashed; what a speed-up must leave unchanged.

Left out: ``timings`` (the run's own clock, with ``--verbose``), ``tool`` and ``environment``
(versions), and every string (wording may change; numbers may not). Numbers are taken as the
report wrote them (rounded), so a change below the report's last digit is not a change.

    python benchmarks/fingerprint.py REPORT.json [REPORT.json ...]   # one hash per report
    python benchmarks/fingerprint.py --diff OLD.json NEW.json        # the numbers that differ

Stdlib only; exit status 1 when ``--diff`` finds a difference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from typing import Any

SKIPPED = {"timings", "tool", "environment"}


def numbers(value: Any, path: str = "") -> Iterator[tuple[str, float | int | bool | None]]:
    """(key path, number) for every number, boolean and null in ``value``, in document order."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not (path == "" and key in SKIPPED):
                yield from numbers(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from numbers(item, f"{path}/{i}")
    elif not isinstance(value, str):
        yield path, value


def fingerprint(report: dict[str, Any]) -> tuple[str, int]:
    """The SHA-256 of the report's numbers (:func:`numbers`), and how many there are."""
    pairs = list(numbers(report))
    text = json.dumps(pairs, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16], len(pairs)


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", metavar="REPORT.json")
    parser.add_argument("--diff", action="store_true", help="compare two reports' numbers")
    args = parser.parse_args()
    if not args.diff:
        for path in args.reports:
            digest, count = fingerprint(load(path))
            print(f"{digest}  {count:>8} numbers  {path}")
        return 0
    if len(args.reports) != 2:
        parser.error("--diff takes two reports")
    old, new = (dict(numbers(load(p))) for p in args.reports)
    changed = [
        (k, old.get(k), new.get(k))
        for k in old.keys() | new.keys()
        if old.get(k, ...) != new.get(k, ...)
    ]
    for key, a, b in sorted(changed)[:50]:
        print(f"{key}: {a} -> {b}")
    print(f"{len(changed)} of {max(len(old), len(new))} numbers differ")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
