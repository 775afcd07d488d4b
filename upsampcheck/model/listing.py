"""``upsampcheck model --list-stages``: the stages discovery finds, their factors, rates and
shapes, without measuring them (the cost of a discovery pass: one or two short forwards).

The rates are the ones the full check uses: the output runs at ``sample_rate``, a stage whose
output is ``r`` times shorter than the model's runs at ``sample_rate / r`` (``r`` snapped to
the factors of later stages), and its input rate is that over its factor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..check import check_sample_rate, resolve_device
from ..subjects.loading import LoadedModel
from .check import ModelOptions, discover_model, stage_layouts
from .discovery import (
    model_factor,
    select_stages,
)
from .rates import Lengths


@dataclass
class StageRow:
    """One discovered stage as ``--list-stages`` shows it."""

    name: str
    kind: str
    factor: float
    fs_in: float | None
    fs_out: float | None
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    measurable: bool
    why: str | None = None


@dataclass
class StageListing:
    """The stages, the input shape discovery ran at, the model's rate factor and the notes
    (where the shape came from, loose snaps)."""

    input_shape: tuple[int, ...]
    factor: float
    rows: list[StageRow]
    other_axis: list[StageRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def list_stages(loaded: LoadedModel, opts: ModelOptions) -> StageListing:
    """Discover ``loaded``'s stages exactly as :func:`~.check.check_model` does (the same input
    shape, candidates and short first pass) and lay out their factors and rates; measure
    nothing."""
    sample_rate = check_sample_rate(opts.sample_rate)
    notes = list(loaded.notes)
    device = resolve_device(opts.device)
    found, length, shape, *_ = discover_model(loaded, opts, device, notes, memory=False)
    stages = select_stages(found.stages, opts.stage)
    factor = model_factor(found, length, notes)
    layouts, clean = stage_layouts(found, stages, sample_rate, Lengths.of(found, length), None)
    if not clean:
        notes.append(
            "some stage lengths do not snap cleanly to their factors at this short input: the "
            "full check discovers again at the probe's length for exact rates"
        )
    rows = [
        StageRow(
            lay.stage.name,
            lay.stage.kind,
            lay.stage.factor,
            lay.fs_in if lay.rate else None,
            lay.fs_out if lay.rate else None,
            tuple(lay.stage.in_shape),
            tuple(lay.stage.out_shape),
            lay.why is None,
            lay.why,
        )  # fmt: skip
        for lay in layouts
    ]
    other = [
        StageRow(s.name, s.kind, s.factor, None, None, s.in_shape, s.out_shape, False, "other axis")
        for s in found.other_axis
    ]
    return StageListing((*shape[:-1], length), factor, rows, other, notes)
