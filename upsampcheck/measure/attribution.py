"""Which stage made which line: replicas traced through a chain of upsamplers (docs/method.md).

An upsampler by ``S`` at input rate ``fs_in`` copies every input component ``f`` to the images
``|k fs_in ± f|`` below its output Nyquist ``S fs_in / 2`` (``k = 0..S``). A line at a stage's
output that is an image of a line at its input was made upstream and keeps that line's origin;
any other line was introduced by the stage itself. Each stage's own lines sit on multiples of
its ``fs_in``, and so do all their images further down, since later input rates are multiples
of it.
"""

from __future__ import annotations

from .analysis import Line


def images(freq_hz: float, fs_in: float, factor: float) -> list[float]:
    """Where an input component at ``freq_hz`` appears at the output of an upsampler."""
    nyquist = fs_in * factor / 2
    found = []
    for k in range(int(factor) + 1):
        for image in (k * fs_in - freq_hz, k * fs_in + freq_hz):
            if 0 <= image <= nyquist + 1e-9:
                found.append(image)
    return found


def assign_origins(
    lines: list[Line], upstream: list[Line], fs_in: float, factor: float, name: str, tol_hz: float
) -> None:
    """Set ``origin`` on ``lines`` (a stage's output lines) in place: the origin of the same
    probe's ``upstream`` line (at the stage input) they are an image of, else ``name``."""
    for line in lines:
        line.origin = name
        for source in upstream:
            if source.probe != line.probe:
                continue
            if any(
                abs(image - line.freq_hz) <= tol_hz
                for image in images(source.freq_hz, fs_in, factor)
            ):
                line.origin = source.origin
                break


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
