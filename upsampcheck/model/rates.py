"""Where each stage of a model sits: its integer factor and its exact rates.

The output runs at ``sample_rate``. A stage's output rate is that over the model output's
length / the stage's, snapped to the factors discovery found (:func:`nominal_ratio`): a run
of later stages' factors, or one over a product of any (a stage that runs faster than the
output, decimated after it). Where padding makes lengths far from the rates (Demucs pads its
input to a valid length), the ratio is read off how much the stage and the output grew between
two passes (:func:`length_ratio`). The input rate is the output rate over the stage's factor,
so ``fs_in · factor == fs_out`` exactly. :class:`PassPlan` lays each stage out as the probe
pass reaches it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..measure.analysis import StagePlan
from ..subjects.discover import Discovery, Stage
from . import periods

SLOPE_SAMPLES = 16
"""A stage's rate is read off its growth between two passes when it grew by this much."""
RATIO_TOLERANCE = 0.05
"""Length ratios within 5 % of a product of stage factors are taken as that product."""
DIVIDED_TOLERANCE = 0.02
"""... and within 2 % of a run of later factors over a product of any (a tighter bound: those
quotients lie closer together)."""
LOOSE_TOLERANCE = 0.25
"""... and within 25 % when nothing closer fits (noted in the report)."""


def factor_products(factors: list[float], limit: float = 2.0**24) -> set[float]:
    """Every product of a subset of ``factors`` (1 included), up to ``limit``."""
    products = {1.0}
    for factor in factors:
        products |= {p * factor for p in products if p * factor <= limit}
    return products


def nominal_ratio(
    length: int, shorter: int, factors: list[float], every: list[float] | None = None
) -> tuple[float, bool]:
    """``length / shorter`` as a rate ratio, and whether it snapped cleanly.

    Tried in turn: the nearest product of a run of consecutive ``factors`` (or 1), or the
    reciprocal of a product of any of ``every`` (a stage running faster than the output, as
    BigVGAN's x2 anti-aliasing before its /2), within :data:`RATIO_TOLERANCE`; an integer
    within 2 % and 0.1; below 1, the reciprocal of an integer within 2 % (the signal is
    decimated after the stage by an op that is no stage: Demucs resamples its output back down
    with ``julius.resample_frac(x, 2, 1)``); a run of later factors over a product of any,
    within :data:`DIVIDED_TOLERANCE` (that decimation seen from a deep stage: Demucs v2's
    first decoder layer, 4·4·4·4 / 2 = 128 below the output); the nearest such product within
    :data:`LOOSE_TOLERANCE` (short inputs, where a crop of a few frames is a large fraction:
    WaveRNN's upsampler drops 4 of 64 frames); else the ratio itself. The last two are not
    clean: the caller notes them.
    """
    ratio = length / shorter
    runs = {1.0}
    for start in range(len(factors)):
        product = 1.0
        for factor in factors[start:]:
            product *= factor
            runs.add(product)
    undone = factor_products(every or [])
    products = runs | {1 / p for p in undone}
    best = min(products, key=lambda p: abs(math.log(ratio / p)))
    if abs(ratio / best - 1) <= RATIO_TOLERANCE:
        return best, True
    divided = {p / q for p in runs for q in undone if q > 1}
    near = min(divided, key=lambda p: abs(math.log(ratio / p)), default=best)
    if abs(ratio / near - 1) <= DIVIDED_TOLERANCE:
        return near, True
    if abs(ratio - round(ratio)) <= min(0.02 * ratio, 0.1):
        return float(round(ratio)), True
    if 0 < ratio < 1 and abs(ratio * round(1 / ratio) - 1) <= 0.02:
        return 1 / round(1 / ratio), True
    if abs(ratio / best - 1) <= LOOSE_TOLERANCE:
        return best, False
    return ratio, False


def integer_rate(stage: Stage) -> int | None:
    """The stage's upsampling factor as an integer: its factor when within 5 % of an integer
    >= 2 (a shape-growth stage's factor is its exact length ratio, which padding can make
    7.99 for 8), else None (a fractional factor such as 1.5 is not measured)."""
    rate = round(stage.factor)
    if rate >= 2 and abs(stage.factor / rate - 1) <= RATIO_TOLERANCE:
        return rate
    return None


@dataclass
class Lengths:
    """A pass's lengths: its input's, its output's, and each stage's output (by name)."""

    input: int
    output: int
    stages: dict[str, int]

    @classmethod
    def of(cls, found: Discovery, length: int) -> Lengths:
        """The lengths of a discovery pass at input ``length``."""
        return cls(length, found.output_shape[-1], {s.name: s.out_shape[-1] for s in found.stages})


def length_ratio(
    name: str, here: Lengths, ref: Lengths | None, slope: float | None = None
) -> tuple[float, float]:
    """``(model output samples, stage output samples)`` whose ratio is the stage's rate
    ratio: their growth between the pass ``ref`` and this one where the stage grew by at least
    :data:`SLOPE_SAMPLES` (padding and cropping cancel: Demucs pads its input to a valid
    length, so at depth the lengths themselves are far from the rates), else the lengths. The
    output's growth is ``slope`` times the input's when given (the model factor)."""
    own = here.stages[name]
    if ref is not None and name in ref.stages and abs(own - ref.stages[name]) >= SLOPE_SAMPLES:
        grown = (here.input - ref.input) * slope if slope else here.output - ref.output
        if grown:
            return grown, own - ref.stages[name]
    return here.output, own


@dataclass
class StageLayout:
    """Where a stage sits in the model: its integer factor, its rates (``fs_out = sample_rate /
    ratio``, ``ratio`` snapped to the factors discovery found, so ``fs_in · rate == fs_out``
    exactly), and its :class:`StagePlan`, or why it cannot be measured."""

    stage: Stage
    rate: int | None
    fs_in: float
    fs_out: float
    plan: StagePlan | None = None
    why: str | None = None


def stage_factors(found: Discovery) -> tuple[list[int], dict[str, list[float]]]:
    """Every stage's integer factor, and each stage's later stages' factors (by name): what
    :func:`nominal_ratio` snaps to."""
    every = [r for s in found.stages if (r := integer_rate(s))]
    later = {s.name: [t.factor for t in found.stages[i + 1 :]] for i, s in enumerate(found.stages)}
    return every, later


def rated(
    stage: Stage, lengths: tuple[float, float], later: list[float], every: list[int],
    sample_rate: float,
) -> tuple[StageLayout, bool]:  # fmt: skip
    """The stage's layout (no plan yet) from ``lengths`` = (model output, stage output) growth
    (:func:`length_ratio`): its output rate ``sample_rate`` over their ratio snapped
    (:func:`nominal_ratio`), its input rate that over its integer factor; and whether the snap
    was clean."""
    rate = integer_rate(stage)
    ratio, clean = nominal_ratio(*lengths, later, every)
    fs_out = sample_rate / ratio
    return StageLayout(stage, rate, fs_out / rate if rate else fs_out, fs_out), clean


@dataclass
class PassPlan:
    """What lays a stage out as the probe pass reaches it (:meth:`layout`): the output's rate
    and (expected) length, the model input's rate and multitone period, every stage's integer
    factor and each stage's later factors, the lowest input rate laid out so far (the grid),
    and where loose snaps are noted."""

    sample_rate: float
    fs0: float
    period: int
    groups: int
    out_len: int
    every: list[int]
    later: dict[str, list[float]]
    notes: list[str]
    frames: int = 0
    factor: float = 1.0
    ref: Lengths | None = None
    """A discovery pass at another input length: rates from each stage's growth since."""
    input_free: tuple[str, ...] = ()
    """Stages the model's input does not reach (:mod:`.input_free`): driven alone."""
    lowest: float = math.inf
    unreadable: list[str] = field(default_factory=list)
    """Stages whose length ratio to the output is no product of the stages' factors, no
    integer and no reciprocal of one, even loosely, or snaps only loosely while its length
    stays the same at another input length: their rates cannot be read (a model that
    pads or crops to a length of its own, as HTDemucs does to its training segment)."""

    def layout(self, stage: Stage, length: int) -> StageLayout:
        """The layout of ``stage``, whose output is ``length`` samples long in this pass: its
        output rate is ``sample_rate`` over the model output's length / ``length``, snapped
        (:func:`nominal_ratio`: a run of later stages' factors, or one over a product of any,
        for a stage that runs faster than the output); its input rate that over its factor.
        A loose snap is noted."""
        here = Lengths(self.frames, self.out_len, {stage.name: length})
        lengths = length_ratio(stage.name, here, self.ref, self.factor)
        layout, clean = rated(stage, lengths, self.later[stage.name], self.every, self.sample_rate)
        fixed = (  # the same length at another input: the model pads to a length of its own
            self.ref is not None
            and self.ref.input != self.frames
            and self.ref.stages.get(stage.name) == length
        )
        if not clean and (
            fixed or math.isclose(self.sample_rate / layout.fs_out, lengths[0] / lengths[1])
        ):
            self.unreadable.append(f"{stage.name} ({lengths[0] / lengths[1]:.4g})")
        if not clean:
            self.notes.append(
                f"{stage.name}: output/stage length ratio {lengths[0] / lengths[1]:.4g} taken "
                f"as {self.sample_rate / layout.fs_out:.4g}, so its output rate is "
                f"{layout.fs_out:g} Hz"
            )
        rate = layout.rate
        if rate is None:
            layout.why = "its factor is not an integer"
            return layout
        period_in = periods.whole(periods.rate_ratio(layout.fs_in / self.fs0) * self.period)
        if period_in is None or period_in < periods.MIN_FIXED_PERIOD:
            layout.why = f"its rate {layout.fs_in:g} Hz does not divide the probe period"
            return layout
        self.lowest = min(self.lowest, layout.fs_in)
        grid = max(1, round(self.lowest / (self.fs0 / self.period)))
        layout.plan = StagePlan(layout.fs_in, rate, period_in, self.period, self.groups, grid)
        return layout
