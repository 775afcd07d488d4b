"""Identical stages: a model such as BigVGAN repeats the same fixed upsampler dozens of times
at one rate. Stages whose kind, factor, input rate and measured numbers agree are drawn once,
the others point to the first of them."""

from __future__ import annotations

from typing import Any


def signature(stage: Any) -> tuple:
    """What makes two stages indistinguishable in the report: kind, factor, input rate, and
    every measured number to the precision the report prints (0.1 dB, 0.1 Hz)."""
    m = stage.measurement
    return (
        stage.kind,
        float(stage.factor),
        round(float(stage.fs_in_hz), 3),
        round(m.noise_gain_db, 1),
        tuple(sorted((k, round(v, 1)) for k, v in m.response_db.items())),
        tuple((round(ln.freq_hz, 1), round(ln.level_db, 1), ln.probe) for ln in m.lines),
        round(m.dc_db, 1),
        None if m.image_rejection_db is None else round(m.image_rejection_db, 1),
    )


def identical_to(stages: list[Any]) -> dict[str, str]:
    """``{stage name: name of the first identical stage before it}`` for every repeat."""
    first: dict[tuple, str] = {}
    repeats = {}
    for stage in stages:
        key = signature(stage)
        if key in first:
            repeats[stage.name] = first[key]
        else:
            first[key] = stage.name
    return repeats
