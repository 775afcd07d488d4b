"""One way to write a frequency everywhere (text, JSON messages, figures, the page)."""

from __future__ import annotations


def hz(value: float) -> str:
    """A frequency in Hz to 0.1 Hz, a trailing ``.0`` dropped: ``86.1``, ``689.1``, ``4000``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
