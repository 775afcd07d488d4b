"""Find the stages of a model that lengthen the time axis, and tap their inputs and outputs.

The time axis is the **last** dimension. One forward pass runs under ``torch.no_grad()`` with a
pre-hook and a forward hook on every submodule and a :class:`~torch.overrides.TorchFunctionMode`
that sees every torch function call. Hooks and mode are removed in ``finally``, also when the
model raises; a failure becomes a one-line :class:`~upsampcheck.errors.StageError` naming the
innermost module the exception came out of (forward hooks use ``always_call=True``, so an
exception the model catches itself does not confuse the module stack).

What counts as a stage (``in`` = the call's first floating or complex tensor argument that is
not a Parameter, ``out`` = the first floating or complex tensor of its result):

1. **Recognised modules** -- ``nn.ConvTranspose1d/2d/3d`` (also parametrized or old-style
   weight-normed), ``nn.Upsample`` (and its subclasses), ``nn.PixelShuffle``, ``nn.Fold``. The
   module is the stage; everything that runs inside it (its ``F.conv_transpose1d``, the
   weight-norm parametrization, ...) is absorbed into it and never counted again.
2. **Recognised functional calls** -- ``F.conv_transpose1d/2d``, ``F.interpolate`` (and the
   ``torch._C._nn.upsample_*`` kernels when called directly), ``torch.repeat_interleave`` /
   ``Tensor.repeat_interleave``, ``F.pixel_shuffle``, ``F.fold``, ``torch.istft``. Named
   ``"<innermost running module>:<op>"``. Only the outermost recognised call counts (torch pops
   the mode while a handler runs, and a depth counter guards the rest).
3. **shape-growth** (module granularity) -- a module call that is not recognised, whose
   ``out.shape[-1] >= 2 * in.shape[-1]`` (``MIN_SHAPE_GROWTH``) with the batch unchanged, and
   inside which nothing already explains the growth: no recognised module or call, no nested
   shape-growth module, and no feature op (``Linear``, RNNs, attention, ``matmul``, ``einsum``:
   their last axis is features in ``(B, T, C)`` layouts) lengthened the last axis. It catches
   hand-written upsamplers: the 1-D subpixel reshape ``view(B, C, S, T).permute(0, 1, 3, 2)
   .reshape(B, C, T * S)``, zero insertion ``y = x.new_zeros(B, C, T * S); y[..., ::S] = x``,
   ... Named by the module, ``module`` set, ``replay`` = the module when it was called with
   one tensor. The threshold keeps padding (``T -> T + p``) out, provided ``T >= p``; fractional
   hand-written upsampling below 2 is missed. Also missed: growth written directly in a module
   whose children already upsample (the module is explained by them), or outside any module.

A recognised op or module grows the time axis when ``out.shape[-1] / in.shape[-1] > 1 + 1e-6``
with the batch (dim 0) unchanged (for ``istft``: ``in.shape[:-2] == out.shape[:-1]``, frames
-> samples). It becomes a time stage when its **rate factor** is also > 1: the op's nominal
factor where it has one (stride along time for transposed convs and fold, ``scale_factor``
for interpolate/Upsample, ``repeats``, ``upscale_factor``, ``hop_length`` for istft), else the
exact length ratio. So a stride-8 transposed conv is factor 8 even if its padding makes
``out_len / in_len`` = 8000 / 1001; :attr:`Stage.length_ratio` keeps the exact ratio, and a
stride-1 transposed conv (longer only by its kernel) is not an upsampler. shape-growth stages
use the exact length ratio. A recognised op that leaves the time axis unchanged but grows an
axis between channels and time (``dims 2 .. -2``, e.g. ``ConvTranspose2d`` with stride
``(4, 1)`` on ``(B, C, freq, frames)``) goes to :attr:`Discovery.other_axis`, with ``factor`` its
rate factor on dim -2 for 4-D tensors, else the largest growth ratio among those axes.

Names: qualified module names (``"decoder.2"``), ``"<root>"`` for the model itself (and for code
outside any module call when ``method`` is not ``forward``); a module or op that runs more than
once in one pass gets ``"#2"``, ``"#3"`` ... on its later calls.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from upsampcheck.errors import StageError, UsageError

ROOT = "<root>"
TOL = 1e-6
MIN_SHAPE_GROWTH = 2.0

_FUNCS: dict[Any, str] = {
    torch.conv_transpose1d: "conv_transpose1d",
    torch.conv_transpose2d: "conv_transpose2d",
    F.interpolate: "interpolate",
    torch.repeat_interleave: "repeat_interleave",
    torch.Tensor.repeat_interleave: "repeat_interleave",
    torch.pixel_shuffle: "pixel_shuffle",
    F.fold: "fold",
    torch.istft: "istft",
    torch.Tensor.istft: "istft",
}
# Interpolation kernels called directly, e.g. torch._C._nn.upsample_linear1d -> "linear".
_UPSAMPLE_MODES = {
    getattr(torch._C._nn, n): m.group(1).replace("_", "-")
    for n in dir(torch._C._nn)
    if (m := re.fullmatch(r"_?upsample_([a-z_]+?)\dd(_aa)?", n))
}
# Ops and modules whose last axis is features, not time ((B, T, C) layouts): when they lengthen
# the last axis, the enclosing modules are not shape-growth stages.
_FEATURE_FUNCS = {
    F.linear,
    F.bilinear,
    torch.matmul,
    torch.Tensor.matmul,
    torch.Tensor.__matmul__,
    torch.Tensor.__rmatmul__,
    torch.mm,
    torch.Tensor.mm,
    torch.bmm,
    torch.Tensor.bmm,
    torch.einsum,
    F.multi_head_attention_forward,
    F.scaled_dot_product_attention,
}
_FEATURE_MODULES = (nn.Linear, nn.Bilinear, nn.RNNBase, nn.MultiheadAttention, nn.Transformer)
_MODULES = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Upsample,
    nn.PixelShuffle,
    nn.Fold,
)
# Positional index and keyword of the arguments the rate factor is read from.
_ARG_POS = {
    "conv_transpose1d": (3, "stride"),
    "conv_transpose2d": (3, "stride"),
    "fold": (5, "stride"),
    "interpolate": (2, "scale_factor"),
    "repeat_interleave": (1, "repeats"),
    "pixel_shuffle": (1, "upscale_factor"),
    "istft": (2, "hop_length"),
}


@dataclass
class Stage:
    """One op that lengthens an axis of its input.

    ``in_shape``/``out_shape`` are the shapes seen during :func:`discover`, e.g. ``(B, C, T)`` and
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

    @property
    def length_ratio(self) -> float:
        """Exact ``out_len / in_len`` along the time axis (``factor`` is the rate factor)."""
        return self.out_shape[-1] / self.in_shape[-1]


@dataclass
class Discovery:
    """The stages of one model: time-axis stages in execution order, and other-axis growth."""

    stages: list[Stage]
    other_axis: list[Stage]
    output_index: str
    output_shape: tuple[int, ...]


@dataclass
class _Frame:
    """One running module call."""

    name: str
    module: nn.Module
    args: tuple
    kwargs: dict
    seq: int
    muted: bool  # inside a recognised module or a parametrization: absorbed by it
    explained: bool = False  # a recognised/feature op or nested stage lengthened the last axis


def _is_signal(t: Any) -> bool:
    return (
        isinstance(t, torch.Tensor)
        and not isinstance(t, nn.Parameter)
        and (t.is_floating_point() or t.is_complex())
    )


def _main_input(args: tuple, kwargs: dict) -> tuple[int | str, torch.Tensor] | None:
    """Location (index or keyword) and value of the first floating/complex tensor argument."""
    for i, a in enumerate(args):
        if _is_signal(a):
            return i, a
    for k, a in kwargs.items():
        if _is_signal(a):
            return k, a
    return None


def _first_tensor(
    obj: Any, where: str = "output", real: bool = False
) -> tuple[str, torch.Tensor] | None:
    """First floating (or complex, unless ``real``) tensor in a (nested) tuple/list/dict, with
    its index string, e.g. ``("output[0]", wave)``."""
    if _is_signal(obj) and not (real and obj.is_complex()):
        return where, obj
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (tuple, list)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = _first_tensor(v, f"{where}[{k!r}]", real)
        if found is not None:
            return found
    return None


def _at(v: Any, axis: int) -> float | None:
    """Entry ``axis`` of a per-axis argument (stride, scale_factor), or the scalar itself."""
    if isinstance(v, (tuple, list)):
        v = v[axis] if len(v) >= -axis else None
    return None if v is None or isinstance(v, torch.Tensor) else float(v)


def _growth(x: torch.Tensor, y: torch.Tensor, istft: bool = False) -> tuple[float, float]:
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


def _longer(x: torch.Tensor, y: torch.Tensor) -> bool:
    """True if ``y``'s last axis is longer than ``x``'s."""
    return x.ndim > 0 and y.ndim > 0 and y.shape[-1] > x.shape[-1]


def _arg(args: tuple, kwargs: dict, pos: int, key: str) -> Any:
    return kwargs.get(key, args[pos] if len(args) > pos else None)


def _func_kind(op: str, func: Any, args: tuple, kwargs: dict) -> tuple[str, Any]:
    """Kind string and per-axis rate argument (None: use the length ratio) of a call."""
    if func in _UPSAMPLE_MODES:
        return f"interpolate({_UPSAMPLE_MODES[func]})", None
    rate = _arg(args, kwargs, *_ARG_POS[op])
    if op == "interpolate":
        return f"interpolate({_arg(args, kwargs, 3, 'mode') or 'nearest'})", rate
    if op == "istft" and rate is None:  # torch's default hop
        rate = _arg(args, kwargs, 1, "n_fft") // 4
    if op in ("conv_transpose1d", "conv_transpose2d", "fold") and rate is None:
        rate = 1  # default stride
    return op, rate


def _module_kind(m: nn.Module) -> tuple[str, Any]:
    """Kind string and per-axis rate argument of a recognised module."""
    if isinstance(m, nn.Upsample):
        return f"Upsample({m.mode})", m.scale_factor
    if isinstance(m, nn.PixelShuffle):
        return "PixelShuffle", m.upscale_factor
    return next(c.__name__ for c in type(m).__mro__ if c in _MODULES), getattr(m, "stride", None)


def _type_name(m: nn.Module) -> str:
    name = type(m).__name__
    return name.removeprefix("Parametrized") if parametrize.is_parametrized(m) else name


def _make_replay(call: Callable, args: tuple, kwargs: dict, loc: int | str) -> Callable:
    """``replay(x)``: ``call`` with ``x`` in place of the stage input at ``loc``."""
    args, kwargs = list(args), dict(kwargs)
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
        found = _first_tensor(call(*a, **k))
        if found is None:
            raise StageError("replayed stage returned no floating-point tensor")
        return found[1]

    return replay


@dataclass
class _Call:
    """A finished call of a recognised module or function, with its stage input/output."""

    seq: int
    name: str
    call: Callable  # the module or function, for replay
    args: tuple
    kwargs: dict
    loc: int | str  # where the stage input sits in args/kwargs
    x: torch.Tensor
    y: torch.Tensor
    functional: bool = False  # name is "<module>:<op>", made unique only when it is a stage


class _Recorder(TorchFunctionMode):
    """Hook callbacks + torch function mode; collects stages and (optionally) their tensors."""

    def __init__(self, names: dict[nn.Module, str], want: set[str] | None = None) -> None:
        super().__init__()
        self.names = names
        self.want = want
        self.stack: list[_Frame] = []
        self.calls: Counter[str] = Counter()
        self.seq = 0
        self.depth = 0
        self.stages: list[tuple[int, Stage]] = []
        self.taps: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.error: tuple[BaseException, _Frame] | None = None

    def _unique(self, base: str) -> str:
        self.calls[base] += 1
        n = self.calls[base]
        return base if n == 1 else f"{base}#{n}"

    def _add(
        self,
        c: _Call,
        kind: str,
        factor: float,
        module: nn.Module | None,
        replay: Callable | None,
        time_axis: bool = True,
    ) -> None:
        if c.functional:
            c.name = self._unique(c.name)
        stage = Stage(
            c.name, kind, factor, tuple(c.x.shape), tuple(c.y.shape), module, replay, time_axis
        )
        self.stages.append((c.seq, stage))
        if self.want is not None and c.name in self.want:
            self.taps[c.name] = (c.x.detach(), c.y.detach())

    def _classify(self, c: _Call, kind: str, rate: Any, module: nn.Module | None) -> None:
        """Add a recognised call as a time stage, an other-axis stage or nothing.

        The factor is the op's rate argument on that axis where it has one, else the length
        ratio; a rate <= 1 (e.g. a stride-1 transposed conv) is not a stage.
        """
        time_ratio, other_ratio = _growth(c.x, c.y, istft=kind == "istft")
        if time_ratio > 1 + TOL:
            factor, time_axis = _at(rate, -1) or time_ratio, True
        elif time_ratio > 1 - TOL and other_ratio > 1 + TOL:
            factor, time_axis = (c.x.ndim == 4 and _at(rate, -2)) or other_ratio, False
        else:
            return
        if factor > 1 + TOL:
            replay = _make_replay(c.call, c.args, c.kwargs, c.loc)
            self._add(c, kind, factor, module, replay, time_axis)

    # -- module hooks ---------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        parent = self.stack[-1] if self.stack else None
        muted = parent is not None and (
            parent.muted or isinstance(parent.module, (_MODULES, parametrize.ParametrizationList))
        )
        name = self._unique(self.names.get(module, ROOT))
        self.seq += 1
        self.stack.append(_Frame(name, module, args, kwargs, self.seq, muted))

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        # Registered with always_call: also runs (output None) while an exception leaves forward.
        raised = sys.exc_info()[1] if output is None else None
        while self.stack:
            frame = self.stack.pop()
            if frame.module is module:
                break
        else:
            return
        if raised is not None:
            if self.error is None or self.error[0] is not raised:
                self.error = (raised, frame)  # the innermost call this exception left
            return
        explained = self._finish(frame, output)
        if explained and self.stack:
            self.stack[-1].explained = True

    def _finish(self, f: _Frame, output: Any) -> bool:
        """Record a finished module call if it is a stage; True if it explains time growth."""
        inp, out = _main_input(f.args, f.kwargs), _first_tensor(output)
        if f.muted or inp is None or out is None:
            return f.explained
        c = _Call(f.seq, f.name, f.module, f.args, f.kwargs, inp[0], inp[1], out[1])
        time_ratio = _growth(c.x, c.y)[0]
        if isinstance(f.module, _MODULES):
            self._classify(c, *_module_kind(f.module), f.module)
            return time_ratio > 1 + TOL
        if isinstance(f.module, _FEATURE_MODULES):
            return f.explained or _longer(c.x, c.y)
        if f.explained or time_ratio < MIN_SHAPE_GROWTH:
            return f.explained
        only_input = sum(_is_signal(a) for a in (*f.args, *f.kwargs.values())) == 1
        replay = _make_replay(f.module, f.args, f.kwargs, c.loc) if only_input else None
        self._add(c, "shape-growth", time_ratio, f.module, replay)
        return True

    # -- functional calls -------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        op = _FUNCS.get(func) or ("interpolate" if func in _UPSAMPLE_MODES else None)
        feature = func in _FEATURE_FUNCS
        if (op is None and not feature) or self.depth:
            return func(*args, **kwargs)
        self.seq += 1
        seq = self.seq
        self.depth += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.depth -= 1
        frame = self.stack[-1] if self.stack else None
        inp, res = _main_input(args, kwargs), _first_tensor(out)
        if inp is None or res is None or (frame is not None and frame.muted):
            return out
        base = f"{frame.name if frame else ROOT}:{op}"
        c = _Call(seq, base, func, args, kwargs, inp[0], inp[1], res[1], functional=True)
        if frame is not None and _longer(c.x, c.y):
            frame.explained = True  # recognised or feature op: the module's growth is explained
        if op is not None and not (frame is not None and isinstance(frame.module, _MODULES)):
            self._classify(c, *_func_kind(op, func, args, kwargs), None)
        return out

    def failure(self, exc: BaseException) -> str:
        """One-line message naming the innermost module that ``exc`` came out of."""
        if self.error is not None and self.error[0] is exc:
            frame = self.error[1]
        else:  # raised outside any module call that is hooked: the innermost one still running
            frame = self.stack[-1] if self.stack else None
        where = f"'{frame.name}' ({_type_name(frame.module)})" if frame else f"'{ROOT}'"
        text = str(exc).strip().splitlines()
        return f"model failed in {where}: {type(exc).__name__}" + (f": {text[0]}" if text else "")


def _run(
    model: nn.Module, inputs: torch.Tensor, method: str, want: set[str] | None
) -> tuple[_Recorder, Any]:
    """One hooked forward pass of ``getattr(model, method)(inputs)`` under ``no_grad``."""
    if not callable(getattr(model, method, None)):
        raise UsageError(f"model {type(model).__name__} has no method '{method}'")
    names = {m: (n or ROOT) for n, m in model.named_modules()}
    rec = _Recorder(names, want)
    hooked = [m for m in names if m is not model or method == "forward"]
    handles = []
    try:
        for m in hooked:
            handles.append(m.register_forward_pre_hook(rec.pre_hook, with_kwargs=True))
            handles.append(
                m.register_forward_hook(rec.post_hook, with_kwargs=True, always_call=True)
            )
        with torch.no_grad(), rec:
            if method == "forward":
                output = model(inputs)
            else:  # no hooks fire for a plain method: stand in for the root call
                rec.pre_hook(model, (inputs,), {})
                output = getattr(model, method)(inputs)
                rec.post_hook(model, (inputs,), {}, output)
    except Exception as exc:
        raise StageError(rec.failure(exc)) from exc
    finally:
        for h in handles:
            h.remove()
    return rec, output


def _analysed(output: Any) -> tuple[str, torch.Tensor]:
    found = _first_tensor(output, real=True)
    if found is None:
        raise StageError("model output has no floating-point tensor to analyse")
    return found


def discover(model: nn.Module, inputs: torch.Tensor, method: str = "forward") -> Discovery:
    """Run ``getattr(model, method)(inputs)`` once and list its upsampling stages.

    Args:
        model: any module; it runs as it is (call ``.eval()`` first for deterministic layers).
        inputs: the model input, e.g. ``(B, C, T)`` audio or ``(B, n_mels, frames)``.
        method: the method to call (``"forward"``, ``"decode"``, ...).

    Returns:
        :class:`Discovery`; the analysed output is the first floating tensor of the result.

    Raises:
        StageError: the model raised (one line naming the module that was running).
    """
    rec, output = _run(model, inputs, method, None)
    index, y = _analysed(output)
    stages = [s for _, s in sorted(rec.stages, key=lambda p: p[0])]
    return Discovery(
        stages=[s for s in stages if s.time_axis],
        other_axis=[s for s in stages if not s.time_axis],
        output_index=index,
        output_shape=tuple(y.shape),
    )


def tap(
    model: nn.Module, inputs: torch.Tensor, stages: list[Stage], method: str = "forward"
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """One forward pass returning the analysed output and each stage's ``(input, output)``.

    ``inputs`` may have another batch size than at :func:`discover`. Tensors are detached
    and stay on the model's device.
    """
    want = {s.name for s in stages}
    rec, output = _run(model, inputs, method, want)
    missing = sorted(want - rec.taps.keys())
    if missing:
        raise StageError(f"stages did not run in the tap pass: {', '.join(missing)}")
    return _analysed(output)[1].detach(), rec.taps
