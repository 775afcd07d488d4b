"""The memory a model's own forward pass takes, measured on a short input.

The probe pass holds, besides the tool's reductions, whatever the model's forward keeps alive
at its widest point: WaveNet-like layers at the output rate (ParallelWaveGAN: 30 of them, 64 to
128 channels each), gates and skips. Shapes seen at the stages miss that, so it is measured: one
pass of the short discovery input under a dispatch mode that counts every tensor an op returns
and drops it when the last tensor on its storage is collected. The peak of those live bytes,
is split, from two short passes, into a part that does not grow with the signal and one per
element of the widest stage's input and output (:func:`forward_cost`); the second, at the
probe's stage shapes, and the first make the forward's share of the estimate
(:func:`model_memory`). Linear in the stages' lengths: a model with attention
(quadratic) is under-estimated.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from ..measure.probes import PROBES
from ..measure.reduce import BLOCK_VALUES
from ..subjects.digest import Digest, digest_input
from ..subjects.discover import Discovery, Stage, discover, discover_digested
from ..subjects.dispatch_mode import PlainDispatchMode
from .seeding import generator_states, seeded
from .taps import model_dtype, probe_batch

if TYPE_CHECKING:
    from .check import ModelOptions


class LiveTensors(PlainDispatchMode):
    """Counts the bytes of the storages that tensors returned by ops keep alive; ``peak`` is
    the most at once. Views share their base's storage and are counted once."""

    def __init__(self, existing: tuple[torch.Tensor, ...] = ()) -> None:
        super().__init__()
        self.storages: dict[int, list[int]] = {}  # data_ptr: [tensors alive, bytes]
        self.existing = {t.untyped_storage().data_ptr() for t in existing}
        """Storages that were there before (the input, the weights): never counted."""
        self.now = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for leaf in pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf)
        return out

    def _track(self, t: torch.Tensor) -> None:
        try:
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # a tensor without storage
            return
        if not key or not size or key in self.existing:
            return
        entry = self.storages.get(key)
        if entry is None:
            self.storages[key] = entry = [0, size]
            self.now += size
            self.peak = max(self.peak, self.now)
        entry[0] += 1
        weakref.finalize(t, self._drop, key)

    def _drop(self, key: int) -> None:
        entry = self.storages.get(key)
        if entry is not None:
            entry[0] -= 1
            if entry[0] <= 0:
                del self.storages[key]
                self.now -= entry[1]


def forward_peak(model: nn.Module, x: torch.Tensor, method: str) -> float | None:
    """The peak bytes of tensors alive during ``getattr(model, method)(x)`` (its output
    included), or None where the count cannot be taken (a model that fails under the mode)."""
    counter = LiveTensors((x, *model.parameters(), *model.buffers()))
    try:
        with torch.no_grad(), counter:
            out: Any = getattr(model, method)(x)
    except Exception:  # noqa: BLE001 (no measurement: the estimate from shapes stands)
        return None
    del out
    return float(counter.peak)


LONGER = (2, 8, 32, 128, 512)
"""The lengths, in multiples of the short pass's, tried for the second pass."""
ELEMENT_BYTES = 4
"""The least a widest-stage element costs: its input and output are alive together while it
runs, in float32 (SNAC's passes measure 2.1 bytes between two paddings, and its run needs 4)."""


Peak = tuple[float, int] | None
"""A discovery pass's peak live bytes and its widest stage's input and output in elements."""


@dataclass(frozen=True)
class CountedPass:
    """What one counted discovery pass left: its :data:`Peak`, each stage input's digest
    (:func:`~.subjects.digest.digest`) and the model's analysed output."""

    peak: Peak
    digests: dict[str, Digest]
    output: torch.Tensor
    drew: bool
    """True when the pass drew from a generator :func:`~.seeding.generator_states` reads."""


_COUNTED: weakref.WeakKeyDictionary[nn.Module, dict[tuple, CountedPass]] = (
    weakref.WeakKeyDictionary()
)
"""The passes :func:`counted_discovery` ran, per model: :func:`peak_and_widest` needs none of
its own at a shape discovery has run, nor the input-free test a first pass
(:func:`discovery_pass`)."""


def counted_discovery(
    model: nn.Module, shape: tuple[int, ...], batch: int | None, opts: ModelOptions,
    device: torch.device,
) -> Discovery:  # fmt: skip
    """:func:`~.subjects.discover.discover` on the seeded noise probe of ``shape`` (repeated
    to ``batch``), the pass discovery runs, with its tensors counted (:class:`LiveTensors`) so
    that :func:`forward_cost` reads its peak instead of running the same pass again (two of
    EnCodec's seven short passes). A pass that fails under the count runs again without it:
    a refusal is the model's own."""
    x = noise_input(model, shape, batch, opts, device)
    try:
        found, kept = counted(model, x, opts, device)
    except Exception:  # noqa: BLE001 (the model's own error, if any, comes from the plain pass)
        with seeded(opts.seed, device):
            return discover(model, x, opts.method)
    _COUNTED.setdefault(model, {})[_key(shape, batch, opts, device)] = kept
    return found


def discovery_pass(
    model: nn.Module, shape: tuple[int, ...], batch: int | None, opts: ModelOptions,
    device: torch.device,
) -> CountedPass | None:  # fmt: skip
    """The counted discovery pass run on the noise probe of ``shape``, None where none ran."""
    return _COUNTED.get(model, {}).get(_key(shape, batch, opts, device))


def noise_input(
    model: nn.Module, shape: tuple[int, ...], batch: int | None, opts: ModelOptions,
    device: torch.device,
) -> torch.Tensor:  # fmt: skip
    """The noise probe of ``shape``, repeated to ``batch``, in the model's dtype."""
    first = probe_batch(shape, 1.0, opts)[:1].to(device, model_dtype(model))
    return first.expand(batch or 1, *shape)


def counted(
    model: nn.Module, x: torch.Tensor, opts: ModelOptions, device: torch.device,
    digests: bool = True,
) -> tuple[Discovery, CountedPass]:  # fmt: skip
    """One seeded discovery pass on ``x`` under the count: what it found, and its peak live
    bytes and widest stage's input and output in elements (None without stages), its stage
    inputs' digests (none without ``digests``: a pass only measured) and its output."""
    counter = LiveTensors((x, *model.parameters(), *model.buffers()))
    with seeded(opts.seed, device):
        before = generator_states(device)
        with counter:
            keep = digest_input if digests else None
            found, kept, output = discover_digested(model, x, opts.method, keep)
        drew = generator_states(device) != before
    widest = max((math.prod(s.in_shape) + math.prod(s.out_shape) for s in found.stages), default=0)
    peak = (counter.peak, widest) if widest else None
    return found, CountedPass(peak, kept, output, drew)


def _key(shape: tuple[int, ...], batch: int | None, opts: ModelOptions, device: torch.device):
    what = (opts.seed, opts.method, opts.level, opts.silence_value, str(device))
    return (tuple(shape), batch, *what)


def peak_and_widest(
    model: nn.Module,
    shape: tuple[int, ...],
    batch: int | None,
    opts: ModelOptions,
    device: torch.device,
) -> Peak:
    """The peak live bytes of one discovery pass on the noise probe of ``shape`` and the
    element count of its widest stage's input and output, from that same pass (the one
    discovery ran, where it ran at ``shape``: :func:`counted_discovery`); None where there
    are no stages or the pass fails."""
    if (known := discovery_pass(model, shape, batch, opts, device)) is not None:
        return known.peak
    try:
        x = noise_input(model, shape, batch, opts, device)
        return counted(model, x, opts, device, digests=False)[1].peak
    except Exception:  # noqa: BLE001 (no measurement: the estimate from shapes stands)
        return None


@dataclass(frozen=True)
class ForwardCost:
    """The model's forward peak as ``fixed + per_element · w``, ``w`` the widest stage's input
    and output in elements; ``widest`` is ``w`` at input ``length``, and ``growth`` how much it
    grows per input sample (None where it did not grow over the lengths tried)."""

    fixed: float
    per_element: float
    length: int
    widest: int
    growth: float | None

    def widest_at(self, frames: int) -> float | None:
        """``w`` at input ``frames`` from the two passes, or None where it did not grow."""
        if self.growth is None:
            return None
        return max(self.widest + self.growth * (frames - self.length), 0.0)


def forward_cost(
    model: nn.Module, shape: tuple[int, ...], batch: int | None, opts: ModelOptions,
    device: torch.device,
) -> ForwardCost | None:  # fmt: skip
    """The model's forward peak from two short passes (``shape`` and the first of
    :data:`LONGER` times its length where the widest stage grew: a codec whose encoder makes
    one frame of 64 samples and of 128 grows at 2,048; SNAC pads every input to 4,096 samples).
    The fixed part is what does not grow with the signal (weight norm recomputes every weight on
    each call: 216 MB in DAC's decoder); the per-element part scales with the stages' shapes at
    the probe's length (:func:`model_memory`). Where the widest stage is the same at
    every length tried (Demucs pads a short input to one long valid length), the peak over it is
    all per-element. None where the first pass fails."""
    first = peak_and_widest(model, shape, batch, opts, device)
    if first is None:
        return None
    p1, w1 = first
    l1 = shape[-1]
    for times in LONGER:  # from the last length where it had not grown (the padding's end)
        l2 = times * shape[-1]
        second = peak_and_widest(model, (*shape[:-1], l2), batch, opts, device)
        if second is None:
            break
        p2, w2 = second
        if w2 > w1 * 1.01:
            slope = max(p2 - p1, 0.0) / (w2 - w1)
            fixed = max(p1 - slope * w1, 0.0)
            # at least the widest stage's input and output, alive together while it runs
            per_element = max(slope, ELEMENT_BYTES)
            return ForwardCost(fixed, per_element, l2, w2, (w2 - w1) / (l2 - l1))
        p1, l1 = max(p1, p2), l2
    return ForwardCost(0.0, p1 / w1, shape[-1], w1, None)


class ModelWork:
    """Input samples through the whole model while it is entered (every call of the module
    itself: discovery, the short passes and the probe pass); what the retry's budget is read
    from (:func:`~.check.retry_growth`). Zero where the module takes no hooks (TorchScript) or
    is driven through another method than ``forward``."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.samples, self.handle = model, 0, None

    def __enter__(self) -> ModelWork:
        try:
            self.handle = self.model.register_forward_pre_hook(self._count)
        except (RuntimeError, AttributeError, TypeError):  # a ScriptModule: no Python hooks
            self.handle = None
        return self

    def _count(self, module: nn.Module, args: tuple) -> None:
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        if first is not None:
            self.samples += first.numel()

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.remove()


FORWARD_SLACK = 2.0
"""The per-element part of the measured forward peak (:func:`forward_cost`) times this: what the
count cannot see (a convolution's workspace, the allocator's slack). A bare forward of
ParallelWaveGAN's five probes peaks at 1.9x its count, StyleMelGAN's at 1.3x; with it, no
model of the survey (benchmarks/README.md) used more than its estimate."""


def model_memory(
    found: Discovery, stages: list[Stage], length: int, frames: int,
    forward_cost: ForwardCost | None = None,
) -> float:  # fmt: skip
    """Bytes the probe pass adds to the model's weights at input ``frames``, from the shapes
    seen at discovery (input ``length``) scaled to ``frames``: the model's own forward
    (``forward_cost``: a fixed part, and a part per element of the widest stage's input and
    output, times :data:`FORWARD_SLACK`, at that stage's size at ``frames``: scaled from
    discovery, or grown as the two short passes grew where that is less, for a model that pads
    a short input to a long one; :func:`forward_cost`), the model output in float32, and, for the
    widest selected stage while it is measured inside the pass, its input and output in float32
    plus a float64 block of each and their mean periods
    (:func:`~.measure.analysis.reduce_periods`)."""

    def widest(of: list[Stage]) -> int:
        return max((math.prod(s.in_shape) + math.prod(s.out_shape) for s in of), default=0)

    grows = frames / length  # the discovery's shapes to the probe's: linear, or as measured
    grown = forward_cost.widest_at(frames) if forward_cost is not None else None
    if grown is not None and widest(found.stages):
        grows = min(grows, grown / widest(found.stages))
    shapes = 4 * (math.prod(found.output_shape) + 2 * widest(stages))
    own = 0.0
    if forward_cost is not None:
        at = grows * widest(found.stages)
        own = forward_cost.fixed + len(PROBES) * FORWARD_SLACK * forward_cost.per_element * at
    return own + len(PROBES) * grows * shapes + 2 * 8 * BLOCK_VALUES
