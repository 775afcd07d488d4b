"""Which stage made which line: replicas traced through a chain of upsamplers (docs/method.md).

An upsampler by ``S`` at input rate ``fs_in`` copies every input component ``f`` to the images
``|k fs_in ± f|`` below its output Nyquist ``S fs_in / 2`` (``k = 0..S``). A line at a stage's
output that is an image of a line at its input was made upstream and keeps that line's origin;
any other line was introduced by the stage itself. Each stage's own lines sit on multiples of
its ``fs_in``, and so do all their images further down, since later input rates are multiples
of it.
"""

from __future__ import annotations

import numpy as np

from .analysis import Line


def image_of(out_hz: np.ndarray, src_hz: np.ndarray, fs_in: float, factor: float, tol_hz: float):
    """``(len(out_hz), len(src_hz))`` booleans: output frequency ``i`` is within ``tol_hz`` of
    an image ``|k fs_in ± src_j|`` (``k = 0..factor``, at most the output Nyquist) of source
    ``j``. Only the two multiples of ``fs_in`` either side of ``out ± src`` can be within a
    tolerance below ``fs_in``, so only those ``k`` are tried."""
    nyquist = fs_in * factor / 2
    out, src = out_hz[:, None], src_hz[None, :]
    hit = np.zeros((len(out_hz), len(src_hz)), dtype=bool)
    for sign in (-1.0, 1.0):  # images k fs_in - src and k fs_in + src
        ratio = (out - sign * src) / fs_in
        for k in (np.floor(ratio), np.ceil(ratio)):
            image = k * fs_in + sign * src
            hit |= (
                (k >= 0) & (k <= int(factor)) & (image >= 0) & (image <= nyquist + 1e-9)
                & (np.abs(image - out) <= tol_hz)
            )  # fmt: skip
    return hit


def assign_origins(
    lines: list[Line], upstream: list[Line], fs_in: float, factor: float, name: str, tol_hz: float
) -> None:
    """Set ``origin`` on ``lines`` (a stage's output lines) in place: the origin of the first
    of the same probe's ``upstream`` lines (at the stage input) they are an image of, else
    ``name``."""
    for line in lines:
        line.origin = name
    for probe in {line.probe for line in lines}:
        mine = [line for line in lines if line.probe == probe]
        sources = [source for source in upstream if source.probe == probe]
        if not sources:
            continue
        hit = image_of(
            np.array([line.freq_hz for line in mine]),
            np.array([source.freq_hz for source in sources]),
            fs_in, factor, tol_hz,
        )  # fmt: skip
        for line, row in zip(mine, hit, strict=True):
            if row.any():
                line.origin = sources[int(np.argmax(row))].origin


def match_origins(lines: list[Line], reference: list[Line], name: str, tol_hz: float) -> None:
    """Lines after non-upsampling blocks keep the origin of the same line before them."""
    for line in lines:
        line.origin = name
        for source in reference:
            if source.probe == line.probe and abs(source.freq_hz - line.freq_hz) <= tol_hz:
                line.origin = source.origin
                break


def trace_inputs(inputs: list[Line], earlier: list, tol_hz: float, name: str) -> list[Line]:
    """Give the lines found at a stage's input (``inputs``) their origin: that of the same
    probe's line at the output of the latest ``earlier`` stage (a ``StageResult``) that has it,
    whichever branch it ran in; a line no measured stage made is ``upstream of NAME``."""
    for line in inputs:
        line.origin = f"upstream of {name}"
        for stage in reversed(earlier):
            match = [
                ln
                for ln in stage.measurement.lines
                if ln.probe == line.probe and abs(ln.freq_hz - line.freq_hz) <= tol_hz
            ]
            if match:
                line.origin = match[0].origin or stage.name
                break
    return inputs


def on_grid(freq_hz: float, fs_in: float, tol_hz: float) -> bool:
    """True when ``freq_hz`` is a multiple ``k >= 1`` of ``fs_in`` (within ``tol_hz``)."""
    k = round(freq_hz / fs_in)
    return k >= 1 and abs(freq_hz - k * fs_in) <= tol_hz


def grid_owners(lines: list[Line], owners: list[tuple[str, float]], unowned, tol_hz: float) -> None:
    """Give each of ``lines`` whose origin satisfies ``unowned`` (no measured stage made it)
    the name of the latest of ``owners`` (``(name, fs_in)`` of stages found but not measured,
    in execution order) on whose grid (multiples of ``fs_in``) it lies: such a stage (an
    ``istft``, whose input is complex) replicates whatever is constant at its input to every
    multiple of its input rate, so a line there that no measured stage carried was made at or
    after it."""
    for line in lines:
        if not unowned(line.origin):
            continue
        for name, fs_in in reversed(owners):
            if on_grid(line.freq_hz, fs_in, tol_hz):
                line.origin = name
                break
