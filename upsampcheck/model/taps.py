"""The probe pass: the five probes as one batch at the model input, every stage measured in the
hook that sees it (:func:`reduce_tap`), only the measurements kept.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..allocator import trim_when_grown
from ..errors import StageError, UsageError
from ..measure.analysis import (
    LineSettings,
    StageMeasurement,
    StagePlan,
    measure_reduced,
)
from ..measure.multitone import MAX_GROUPS, design_multitone, groups_for
from ..measure.probes import PROBES, make_probes
from ..measure.reduce import StageTaps, reduce_stage
from ..report.findings import Finding
from ..subjects.discover import Stage, tap
from . import periods
from .rates import PassPlan, StageLayout
from .seeding import seeded

if TYPE_CHECKING:
    from .check import ModelOptions

MAX_INPUT_GROUPS = MAX_GROUPS
"""Model inputs with up to this many channels get one bin group per channel (8)."""


def input_groups(channels: int) -> int:
    """Interleaved bin groups at a model input: one per channel up to :data:`MAX_INPUT_GROUPS`
    (every ``H_oc`` measured alone); a wider input (80 mel bands) shares one group, every
    channel on every excited bin with independent phases: its responses and images are a
    random-phase mixture of the ``H_oc`` (exact only in expectation; :func:`shared_groups_note`
    says so), and the probe stays as short as for one channel (8 groups would need a period 8
    times longer for a reference bin of each, and still mix ⌈C / 8⌉ channels per bin)."""
    return groups_for(channels) if channels <= MAX_INPUT_GROUPS else 1


def shared_groups_note(channels: int) -> str | None:
    """The note for an input wider than :data:`MAX_INPUT_GROUPS` channels, else None."""
    if channels <= MAX_INPUT_GROUPS:
        return None
    return (
        f"the input has {channels} channels, more than the {MAX_INPUT_GROUPS} that get bins of "
        "their own: every channel drives every excited bin (independent phases), so each "
        "response and image is a random-phase mixture of the transfer functions from all "
        "inputs (exact only in expectation); lines and DC are exact"
    )


def probe_batch(
    shape: tuple[int, ...], fs: float, opts: ModelOptions, period: int | None = None,
    groups: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """``(P, *shape)``: every probe along the last (time) axis, the leading dims as channels;
    the multitone has ``period`` samples (default: the whole length) and ``groups`` bin groups
    (default: :func:`input_groups`)."""
    channels = math.prod(shape[:-1])
    period = period or max(16, shape[-1] // 2 * 2)
    mt = design_multitone(period, channels, opts.seed, opts.level, groups or input_groups(channels))
    probes = make_probes(
        shape[-1], fs, channels, seed=opts.seed, level=opts.level,
        silence_value=opts.silence_value, multitone=mt,
    )  # fmt: skip
    signals = probes.signals
    if opts.silence_value != 0.0:  # noise, DC and sweeps ride on the silence value
        rows = [i for i, name in enumerate(PROBES) if name != "silence"]
        signals[rows] += opts.silence_value
    return signals.reshape(len(PROBES), *shape)


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 when it has none): a float64
    model is probed in float64."""
    params = (p for p in model.parameters() if p.is_floating_point())
    return next(params, torch.empty(0)).dtype


def per_probe(t: torch.Tensor, probes: int = len(PROBES)) -> torch.Tensor | None:
    """``(P*k, ..., T) -> (P, k*..., T)`` when the batch is probe-major, else None."""
    if t.dim() < 2 or t.shape[0] % probes or t.is_complex() or not t.is_floating_point():
        return None
    return t.reshape(probes, -1, t.shape[-1])


def nonfinite_finding(where: str, bad: list[str]) -> Finding:
    """A failing finding: NaN or Inf in ``where`` for the ``bad`` probes."""
    return Finding(
        "numerics",
        "fail",
        where,
        f"non-finite values (NaN/Inf) in {where} for the {', '.join(bad)} probe(s)",
        "the model produces NaN or Inf for these inputs",
        "check the model's weights and input range",
    )


def nonfinite_probes(t: torch.Tensor) -> list[str]:
    """The probes whose rows of ``t (5, ...)`` hold NaN or Inf. A row whose sum is finite has
    none (a NaN or an Inf makes the sum non-finite); only a row whose sum is not (a NaN, an
    Inf, or a sum past the dtype's range) is checked value by value. The sums are one fast
    read of ``t``, with no temporary as large as it."""
    sums = t.reshape(len(PROBES), -1).sum(dim=-1)
    suspect = (~torch.isfinite(sums)).tolist()
    return [
        name
        for i, (name, flag) in enumerate(zip(PROBES, suspect, strict=True))
        if flag and not torch.isfinite(t[i]).all()
    ]


def finite_or_finding(t: torch.Tensor, where: str, findings: list[Finding]) -> bool:
    """False (and a failing finding) when ``t`` holds NaN or Inf."""
    bad = nonfinite_probes(t)
    if bad:
        findings.append(nonfinite_finding(where, bad))
    return not bad


def measure_on_periods(
    x: torch.Tensor, y: torch.Tensor, plan: StagePlan, settings: LineSettings
) -> StageMeasurement:
    """:func:`~.measure.analysis.measure_stage` on the middle periods of the probe rows
    ``x (5, C, T_in)``, ``y (5, C', T_out)``; the sweep and tone for the figures."""
    return measure_reduced(reduce_on_periods(x, y, plan), plan, settings)


def reduce_on_periods(x: torch.Tensor, y: torch.Tensor, plan: StagePlan) -> StageTaps:
    """The middle periods of the probe rows ``x (5, C, T_in)``, ``y (5, C', T_out)`` reduced
    (:func:`~.measure.reduce.reduce_stage`), the sweep and tone kept for the figures."""
    n_in, n_out = plan.period_in, plan.period_out
    others = {name: y[i] for i, name in enumerate(PROBES) if i >= 3}
    return reduce_stage(
        periods.centre_periods(x[:3], n_in), periods.centre_periods(y[:3], n_out), plan, others
    )


@dataclass(frozen=True)
class TapShape:
    """What a stage's tapped input leaves behind for driving the stage alone: its shape per
    probe (no batch), dtype, device, and whether it is complex."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    complex: bool


@dataclass
class Tapped:
    """A stage's probe-pass signals as the in-pass reducer left them: the measurement (None,
    with ``why``, when it cannot be measured), the tapped input's :class:`TapShape`, and the
    probes whose output held NaN or Inf."""

    shape: TapShape
    layout: StageLayout
    measurement: StageMeasurement | None = None
    why: str | None = None
    nonfinite: list[str] | None = None
    unreached: bool = False


def reduce_tap(
    stage: Stage, planner: PassPlan, settings: LineSettings, x_raw: torch.Tensor,
    y_raw: torch.Tensor,
) -> Tapped:  # fmt: skip
    """Lay out and measure a stage on its tapped ``(input, output)`` right where it runs,
    keeping only the measurement: the model's own tensors are never held past the call (and
    freed heap memory goes back to the system as the pass grows: :mod:`.allocator`)."""
    trim_when_grown()
    layout = planner.layout(stage, y_raw.shape[-1])
    x, y = per_probe(x_raw), per_probe(y_raw)
    shape = TapShape(tuple(x_raw.shape[1:]), x_raw.dtype, x_raw.device, x_raw.is_complex())
    if layout.rate is None:
        return Tapped(shape, layout, why="its factor is not an integer")
    if y is None:
        return Tapped(shape, layout, why="its output does not keep the probes along the batch")
    bad = nonfinite_probes(y)
    if bad:
        return Tapped(shape, layout, nonfinite=bad)
    if x is None or x.shape[-1] * layout.rate < y.shape[-1] // 2:
        what = "complex" if x_raw.is_complex() else "not a per-probe signal"
        why = f"its input is {what}, so the probes cannot be traced through it"
        return Tapped(shape, layout, why=why)
    # Only an input whose first two probes agree can be zero, or the same, for all of them:
    # one read of two rows instead of two reads of all five.
    alike = torch.equal(x[0], x[1])
    if alike and not torch.count_nonzero(x):  # (faster than .any())
        why = (
            "not reached by the probes (its input is zero for every probe: an unused branch, "
            "or one driven by the model's own noise)"
        )
        return Tapped(shape, layout, why=why, unreached=True)
    if stage.name in planner.input_free or (alike and torch.equal(x[:1].expand_as(x), x)):
        why = (
            "not reached by the probes (its input is the same whatever the model's input: the "
            "model's own noise or a constant)"
        )
        return Tapped(shape, layout, why=why, unreached=True)
    if layout.plan is None:
        return Tapped(shape, layout, why=layout.why)
    try:
        return Tapped(shape, layout, measure_on_periods(x, y, layout.plan, settings))
    except (ValueError, UsageError):
        return Tapped(shape, layout, why="too few samples; lengthen --input-shape")


def run_probes(
    model: nn.Module,
    signals: torch.Tensor,
    stages: list[Stage],
    reducers: dict[str, Callable],
    method: str,
    batch: int | None,
) -> tuple[torch.Tensor, dict[str, Tapped]]:
    """:func:`~.subjects.discover.tap` on the whole probe batch, each stage reduced inside the
    pass; or, for a model exported with a fixed batch of ``batch`` examples, one pass per
    probe (each repeated ``batch`` times), the taps stacked probe-major as if the batch had run
    at once, then reduced."""
    if batch is None:
        return tap(model, signals, stages, method, reducers)
    outputs, taps = [], {}
    for row in signals:
        out, part = tap(
            model,
            row.expand(batch, *row.shape).contiguous(),
            stages,
            method,
            dict.fromkeys(reducers),
        )
        outputs.append(out)
        for name, pair in part.items():
            taps.setdefault(name, []).append(pair)
    joined = {
        name: reducers[name](torch.cat([x for x, _ in pairs]), torch.cat([y for _, y in pairs]))
        for name, pairs in taps.items()
    }
    return torch.cat(outputs), joined


def probe_model(
    model: nn.Module,
    shape: tuple[int, ...],
    fs: float,
    stages: list[Stage],
    planner: PassPlan,
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
    settings: LineSettings,
) -> tuple[torch.Tensor, dict[str, Tapped]]:
    """The batched probe pass: every probe of shape ``shape`` at the model's input rate ``fs``
    (the multitone of ``planner.period`` samples) through the model (:func:`run_probes`), each
    of ``stages`` laid out by ``planner`` and measured inside the pass (:func:`reduce_tap`).
    Returns the output per probe ``(P, k, T)`` and each stage's :class:`Tapped`."""
    signals = probe_batch(shape, fs, opts, planner.period).to(device, model_dtype(model))
    reducers = {s.name: functools.partial(reduce_tap, s, planner, settings) for s in stages}
    try:
        with seeded(opts.seed, device):
            output, taps = run_probes(model, signals, stages, reducers, opts.method, batch)
    except StageError as exc:
        raise StageError(f"{exc} (check --input-shape / --method)") from None
    y_out = per_probe(output)
    if y_out is None:
        raise UsageError(f"model output of shape {tuple(output.shape)} has no probe-major batch")
    return y_out, taps
