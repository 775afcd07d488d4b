"""What a stage is, and the stages one discovery pass finds, for eager and compiled discovery.

:class:`Stage` is one op that lengthens an axis. :class:`StageLog` keeps the stages of one pass
(:mod:`.discover` for eager models, :mod:`.discover_compiled` for
TorchScript and torch.export archives) and applies the rules both share: a recognised call
(:class:`Call`) is a time stage when it lengthens the last axis and its rate factor is > 1, an
other-axis stage when it grows an axis between channels and time instead; a shape-growth stage
lengthens the last axis at least ``MIN_SHAPE_GROWTH`` times. The helpers below find the signal
among a call's arguments and results and measure how much it grew.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from upsampcheck.errors import StageError

ROOT = "<root>"
TOL = 1e-6
MIN_SHAPE_GROWTH = 2.0
EDGE_FRAMES = 8
"""A shape-growth stage of integer factor ``S`` may lose or gain up to this many input frames
of padding or cropping: ``|out − S · in| ≤ S · EDGE_FRAMES`` (:func:`integer_growth`)."""
EDGE_FRACTION = 0.2
"""... and at most this fraction of ``S · in`` (a fractional 1.5 on a short input is no x2)."""

# Modules whose last axis is features, not time ((B, T, C) layouts): when they lengthen the last
# axis, the enclosing modules are not shape-growth stages.
FEATURE_MODULES = (nn.Linear, nn.Bilinear, nn.RNNBase, nn.MultiheadAttention, nn.Transformer)
# Positional index and keyword of the argument an op's rate factor is read from.
RATE_ARGS = {
    "conv_transpose1d": (3, "stride"),
    "conv_transpose2d": (3, "stride"),
    "conv_transpose3d": (3, "stride"),
    "fold": (5, "stride"),
    "interpolate": (2, "scale_factor"),
    "repeat_interleave": (1, "repeats"),
    "pixel_shuffle": (1, "upscale_factor"),
    "istft": (2, "hop_length"),
}


@dataclass
class Stage:
    """One op that lengthens an axis of its input.

    ``in_shape``/``out_shape`` are the shapes seen at discovery, e.g. ``(B, C, T)`` and
    ``(B, C', T * factor)``; for ``istft`` ``(B, freq, frames)`` (complex) and ``(B, samples)``.
    ``replay(x)`` maps a new stage input (same shape except batch) to the stage output by
    calling the same module or op with the same other arguments, under ``torch.no_grad()``.
    """

    name: str
    kind: str
    factor: float
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    module: nn.Module | None = None
    replay: Callable[[torch.Tensor], torch.Tensor] | None = None
    time_axis: bool = True
    operands: tuple = ()
    """A functional stage's other arguments (its input left out): with the op, what makes two
    calls the same operation (:mod:`.identity`)."""
    learned: bool | None = None
    """A functional stage's filter is a trainable parameter or computed from one (True), or
    fixed: buffers and constants only (False); None for a module stage or where unknown."""

    @property
    def length_ratio(self) -> float:
        """Exact ``out_len / in_len`` along the time axis (``factor`` is the rate factor)."""
        return self.out_shape[-1] / self.in_shape[-1]


def is_signal(t: Any) -> bool:
    """True for a floating or complex tensor that is not a Parameter."""
    return (
        isinstance(t, torch.Tensor)
        and not isinstance(t, nn.Parameter)
        and (t.is_floating_point() or t.is_complex())
    )


def main_input(args: tuple, kwargs: dict) -> tuple[int | str, torch.Tensor] | None:
    """Location (index or keyword) and value of the first floating/complex tensor argument."""
    for i, a in enumerate(args):
        if is_signal(a):
            return i, a
    for k, a in kwargs.items():
        if is_signal(a):
            return k, a
    return None


def first_tensor(
    obj: Any, where: str = "output", real: bool = False
) -> tuple[str, torch.Tensor] | None:
    """First floating (or complex, unless ``real``) tensor in a (nested) tuple/list/dict, with
    its index string, e.g. ``("output[0]", wave)``."""
    if is_signal(obj) and not (real and obj.is_complex()):
        return where, obj
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (tuple, list)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = first_tensor(v, f"{where}[{k!r}]", real)
        if found is not None:
            return found
    return None


def growth(x: torch.Tensor, y: torch.Tensor, istft: bool = False) -> tuple[float, float]:
    """(time length ratio, largest ratio among dims 2..-2); (0, 0) if the batch changed."""
    if istft:
        same_batch = x.shape[:-2] == y.shape[:-1]
    else:
        same_batch = x.ndim < 2 or (y.ndim >= 2 and y.shape[0] == x.shape[0])
    if not same_batch or x.ndim == 0 or y.ndim == 0 or x.shape[-1] == 0:
        return 0.0, 0.0
    other = [b / a for a, b in zip(x.shape[2:-1], y.shape[2:-1], strict=False) if a > 0]
    other_ratio = max(other) if x.ndim == y.ndim and other and not istft else 0.0
    return y.shape[-1] / x.shape[-1], other_ratio


def integer_growth(n_in: int, n_out: int) -> int | None:
    """The integer factor ``S ≥ 2`` of a stage that turns ``n_in`` frames into ``n_out``
    samples up to padding or cropping, or None. ``S = round(n_out / n_in)`` when
    ``|n_out − S · n_in| ≤ S · EDGE_FRAMES`` and ``≤ EDGE_FRACTION · S · n_in``: a padded
    subpixel layer gives ``S (n_in + p)``, zero insertion ``S n_in − (S − 1)``, a x2 that crops
    ``2 n_in − 4``. Padding and cropping change lengths, not rates. One length cannot tell an
    unpadded ``S = 8`` subpixel (kernel 9: ``8 (n_in − 8)``) from a x7 on 64 frames; two
    lengths can (:func:`upsampcheck.model.discovery.refine_factors`)."""
    if n_in <= 0:
        return None
    factor = round(n_out / n_in)
    if factor < 2:
        return None
    off = abs(n_out - factor * n_in)
    return factor if off <= factor * EDGE_FRAMES and off <= EDGE_FRACTION * factor * n_in else None


def grows(x: torch.Tensor, y: torch.Tensor) -> bool:
    """True when ``y``'s last axis is a shape-growth of ``x``'s: ``MIN_SHAPE_GROWTH`` times
    longer, or an integer factor up to padding or cropping (:func:`integer_growth`)."""
    ratio = growth(x, y)[0]
    return ratio >= MIN_SHAPE_GROWTH or (
        ratio > 0 and integer_growth(x.shape[-1], y.shape[-1]) is not None
    )


def longer(x: torch.Tensor, y: torch.Tensor) -> bool:
    """True if ``y``'s last axis is longer than ``x``'s."""
    return x.ndim > 0 and y.ndim > 0 and y.shape[-1] > x.shape[-1]


def arg(args: tuple, kwargs: dict, pos: int, key: str) -> Any:
    """Argument ``key`` of a call, passed by keyword or at position ``pos``; None if absent."""
    return kwargs.get(key, args[pos] if len(args) > pos else None)


def rate_arg(op: str, args: tuple, kwargs: dict) -> Any:
    """The per-axis rate argument of an ``op`` call (:data:`RATE_ARGS`), None where it was
    not given; for ``istft`` torch's default hop, ``n_fft // 4``."""
    rate = arg(args, kwargs, *RATE_ARGS[op])
    if op == "istft" and rate is None:
        rate = arg(args, kwargs, 1, "n_fft") // 4
    return rate


def upsample_mode(op: str) -> str | None:
    """Interpolation mode of an upsampling kernel's name (``"upsample_linear1d"`` -> ``"linear"``,
    ``"_upsample_nearest_exact2d"`` -> ``"nearest-exact"``); None for any other name."""
    match = re.fullmatch(r"_?upsample_([a-z_]+?)\dd(_aa)?", op)
    return match.group(1).replace("_", "-") if match else None


def failure_message(where: str, exc: BaseException) -> str:
    """``model failed in <where>: <exception type>: <first line of its message>``."""
    text = str(exc).strip().splitlines()
    return f"model failed in {where}: {type(exc).__name__}" + (f": {text[0]}" if text else "")


def _axis_value(v: Any, axis: int) -> float | None:
    """Entry ``axis`` of a per-axis argument (stride, scale_factor), or the scalar itself."""
    if isinstance(v, (tuple, list)):
        v = v[axis] if len(v) >= -axis else None
    return None if v is None or isinstance(v, torch.Tensor) else float(v)


@dataclass
class Call:
    """A finished call of a module or op, with its stage input ``x`` and output ``y``."""

    seq: int
    name: str
    call: Callable | None  # the module or function, for replay
    args: tuple
    kwargs: dict
    loc: int | str  # where the stage input sits in args/kwargs
    x: torch.Tensor
    y: torch.Tensor
    functional: bool = False  # name is "<module>:<op>", made unique only when it is a stage
    learned: bool | None = None  # a functional call's filter is (computed from) a parameter

    def operands(self) -> tuple:
        """The call's arguments with the stage input left out: ``(args, sorted kwargs)``."""
        args = tuple(None if i == self.loc else a for i, a in enumerate(self.args))
        kwargs = tuple(sorted((k, v) for k, v in self.kwargs.items() if k != self.loc))
        return args, kwargs

    def replay(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """``replay(x)``: the same module or function with ``x`` in place of the stage input
        and the other arguments as they were, under ``no_grad``; its first floating tensor."""
        call, loc = self.call, self.loc
        args, kwargs = list(self.args), dict(self.kwargs)
        if isinstance(loc, int):
            args[loc] = None  # do not keep the discovery tensor alive
        else:
            kwargs[loc] = None

        @torch.no_grad()
        def replay(x: torch.Tensor) -> torch.Tensor:
            a, k = list(args), dict(kwargs)
            if isinstance(loc, int):
                a[loc] = x
            else:
                k[loc] = x
            found = first_tensor(call(*a, **k))
            if found is None:
                raise StageError("replayed stage returned no floating-point tensor")
            return found[1]

        return replay


Want = set[str] | dict[str, Callable] | Callable | None
"""What a pass keeps of its stages' signals (:class:`StageLog`)."""


class StageLog:
    """The stages one pass finds, keyed by call order, and (for a tap pass) the tensors of the
    stages named in ``want``: ``taps[name] = (input, output)``, detached, or, when ``want`` maps
    names to reducers, ``reduce(input, output)`` computed while the model runs (so nothing of the
    stage's signals outlives the call). A callable ``want`` reduces every stage's pair."""

    def __init__(self, want: Want = None) -> None:
        self.want = want
        self.calls: Counter[str] = Counter()
        self.seq = 0
        self.stages: list[tuple[int, Stage]] = []
        self.taps: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def next_seq(self) -> int:
        """The order number of a call that starts now."""
        self.seq += 1
        return self.seq

    def unique(self, base: str) -> str:
        """``base`` on its first call, ``base#2``, ``base#3`` ... on later ones."""
        self.calls[base] += 1
        n = self.calls[base]
        return base if n == 1 else f"{base}#{n}"

    def ordered(self) -> list[Stage]:
        """Every stage found, in the order their calls started."""
        return [s for _, s in sorted(self.stages, key=lambda p: p[0])]

    def add(
        self,
        c: Call,
        kind: str,
        factor: float,
        module: nn.Module | None,
        replay: Callable | None,
        time_axis: bool = True,
    ) -> None:
        """Record ``c`` as a stage (and tap it if wanted)."""
        if c.functional:
            c.name = self.unique(c.name)
        stage = Stage(
            c.name, kind, factor, tuple(c.x.shape), tuple(c.y.shape), module, replay, time_axis,
            c.operands() if c.functional else (), c.learned if c.functional else None,
        )  # fmt: skip
        self.stages.append((c.seq, stage))
        if callable(self.want):
            self.taps[c.name] = self.want(c.x.detach(), c.y.detach())
        elif self.want is not None and c.name in self.want:
            reduce = self.want.get(c.name) if isinstance(self.want, dict) else None
            pair = (c.x.detach(), c.y.detach())
            self.taps[c.name] = reduce(*pair) if reduce is not None else pair

    def add_recognised(self, c: Call, kind: str, rate: Any, module: nn.Module | None) -> None:
        """Add a recognised call as a time stage, an other-axis stage or nothing.

        With ``r = out.shape[-1] / in.shape[-1]``: ``r > 1`` makes a time stage of factor
        ``rate[-1]`` (the length ratio where the op has no rate); ``r == 1`` with an axis
        between channels and time grown makes an other-axis stage of factor ``rate[-2]`` for
        4-D inputs, else the largest growth ratio. A factor <= 1 (e.g. a stride-1 transposed
        conv) is not a stage.
        """
        time_ratio, other_ratio = growth(c.x, c.y, istft=kind == "istft")
        if time_ratio > 1 + TOL:
            factor, time_axis = _axis_value(rate, -1) or time_ratio, True
        elif time_ratio > 1 - TOL and other_ratio > 1 + TOL:
            factor, time_axis = (c.x.ndim == 4 and _axis_value(rate, -2)) or other_ratio, False
        else:
            return
        if factor > 1 + TOL:
            self.add(c, kind, factor, module, c.replay(), time_axis)

    def add_shape_growth(self, c: Call, module: nn.Module | None, replay: Callable | None) -> None:
        """Add ``c`` as a shape-growth stage, its factor the integer one up to padding or
        cropping (:func:`integer_growth`), else the exact length ratio (a fractional factor)."""
        factor = integer_growth(c.x.shape[-1], c.y.shape[-1])
        self.add(c, "shape-growth", float(factor or growth(c.x, c.y)[0]), module, replay)
