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

**Compiled models** (TorchScript, and the flat graph of a loaded torch.export archive) run their
submodules where no hook sees them; they are watched at the ATen level instead (:class:`_OpWatch`).
An exported graph runs node by node (``torch.fx.Interpreter``) under a function mode that sees
every ATen op it calls; each node's ``nn_module_stack`` names the module it came from. TorchScript
runs under a :class:`~torch.utils._python_dispatch.TorchDispatchMode`, which sees the ops after
decomposition and knows no modules. Recognised ops: transposed convolutions
(``aten.conv_transpose*d``, ``aten.convolution`` / ``aten._convolution`` with ``transposed``),
``aten.upsample_*``, ``aten.repeat_interleave`` (exported graphs only: the dispatcher sees an
int count as expand + reshape), ``aten.pixel_shuffle``, ``aten.col2im`` (fold) and
``aten.istft``, with the rate factors above. A transposed conv is named after the module owning
its weight Parameter, other ops after the node's module; when that module was written as the
matching class (``ConvTranspose1d``, ``Upsample``, ``PixelShuffle``, ``Fold``: from
``RecursiveScriptModule.original_name`` or the stack's class names) the stage is named and
kinded as eager discovery names it (``"decoder"``, ``"ConvTranspose1d"``), else
``"<module>:<op>"`` or ``"<root>:<op>"``. So the same model gives the same stages in every
format where these ops carry the upsampling. Of shape-growth only the model itself is found
(``"<root>"``, replayed by calling the model: when its output is at least twice as long as its
input and no recognised or feature op lengthened the last axis); shape-growth submodules are
not, nor, in TorchScript, ``repeat_interleave`` with an int count.
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
from torch.utils._python_dispatch import TorchDispatchMode

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


# Upsampling ATen ops of compiled models: op name -> (kind, rate arg position, keyword, classes
# of the module that, running the op, is the stage itself).
_ATEN_OPS: dict[str, tuple[str, int, str, tuple[str, ...]]] = {
    "conv_transpose1d": ("conv_transpose1d", 3, "stride", ("ConvTranspose1d",)),
    "conv_transpose2d": ("conv_transpose2d", 3, "stride", ("ConvTranspose2d",)),
    "conv_transpose3d": ("conv_transpose3d", 3, "stride", ("ConvTranspose3d",)),
    "repeat_interleave": ("repeat_interleave", 1, "repeats", ()),
    "pixel_shuffle": ("pixel_shuffle", 1, "upscale_factor", ("PixelShuffle",)),
    "col2im": ("fold", 5, "stride", ("Fold",)),
    "istft": ("istft", 2, "hop_length", ()),
}
_UPSAMPLE_CLASSES = ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")
# ATen ops whose last axis is features (see _FEATURE_FUNCS).
_FEATURE_OPS = {"linear", "addmm", "mm", "bmm", "baddbmm", "matmul", "einsum", "bilinear"}
_FEATURE_OPS |= {"_scaled_dot_product_flash_attention", "scaled_dot_product_attention"}
_FEATURE_OPS |= {"_scaled_dot_product_efficient_attention", "_native_multi_head_attention"}
_FEATURE_OPS |= {"lstm", "gru", "rnn_tanh", "rnn_relu"}
_FEATURE_MODULE_NAMES = {c.__name__ for c in (*_FEATURE_MODULES, nn.RNN, nn.LSTM, nn.GRU)}


def module_types(model: nn.Module) -> dict[str, str]:
    """Qualified name -> class name of every submodule (``""`` is the model itself), as the
    model was written: ``original_name`` for TorchScript, the ``nn_module_stack`` an exported
    graph records for its modules (which are bare holders of parameters there)."""
    types = {}
    for name, m in model.named_modules():
        types[name] = getattr(m, "original_name", None) or type(m).__name__
    graph = getattr(model, "graph", None)
    if isinstance(graph, torch.fx.Graph):
        for node in graph.nodes:
            for path, cls in (node.meta.get("nn_module_stack") or {}).values():
                if isinstance(path, str) and isinstance(cls, str):
                    types[path] = cls.rsplit(".", 1)[-1].removeprefix("Parametrized")
    return types


def is_compiled(model: nn.Module) -> bool:
    """True for models whose submodule calls no hook can see: TorchScript, and flat fx graphs
    (a loaded torch.export program) that never call the submodules holding their parameters
    (only helpers such as ``_guards_fn``)."""
    if isinstance(model, torch.jit.ScriptModule):
        return True
    graph = getattr(model, "graph", None)
    if not isinstance(graph, torch.fx.Graph):
        return False
    called = {node.target for node in graph.nodes if node.op == "call_module"}
    owners = {name.rpartition(".")[0] for name, _ in model.named_parameters()}
    return not any(o == c or o.startswith(f"{c}.") for c in called for o in owners)


@dataclass
class _Span:
    """The consecutive nodes of an exported graph that one module call became."""

    key: str  # the nn_module_stack key of the call
    path: str  # the module's qualified name
    seq: int
    nodes: set[str]
    x: torch.Tensor | None = None  # its first signal argument from outside the call
    y: Any = None  # the last value it passes to nodes outside it
    explained: bool = False


class _OpWatch:
    """Discovery inside a compiled model (see the module docstring): recognised ATen ops,
    named like eager discovery names them, from the ``nn_module_stack`` of the fx node that
    runs (exported graphs) or the module that owns a transposed conv's weight."""

    def __init__(self, model: nn.Module, want: set[str] | None) -> None:
        self.book = _Recorder({}, want)
        self.types = module_types(model)
        self.modules = dict(model.named_modules())
        self.owners = {p.data_ptr(): n.rpartition(".")[0] for n, p in model.named_parameters()}
        self.node: torch.fx.Node | None = None
        self.explained = False  # a recognised or feature op lengthened the last axis
        self.spans: list[_Span] = []  # the module calls the running node is inside

    @property
    def stages(self) -> list[tuple[int, Stage]]:
        return self.book.stages

    @property
    def taps(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return self.book.taps

    def path(self) -> str | None:
        """Qualified name of the innermost module the running fx node belongs to."""
        stack = self.node.meta.get("nn_module_stack") if self.node is not None else None
        return list(stack.values())[-1][0] if stack else None

    def _recognise(self, op: str, args: tuple, kwargs: dict) -> tuple | None:
        """(name, kind, rate argument, module) of a recognised op call, else None."""
        path = self.path()
        if op in ("convolution", "_convolution"):  # what transposed convs reach the dispatcher as
            if len(args) < 7 or args[6] is not True:
                return None
            op, rate = f"conv_transpose{args[1].dim() - 2}d", args[3]
        elif (mode := re.fullmatch(r"_?upsample_([a-z_]+?)\dd(_aa)?", op)) is not None:
            mode = mode.group(1).replace("_", "-")
            if self.types.get(path) in _UPSAMPLE_CLASSES:
                return path or ROOT, f"Upsample({mode})", None, self.modules.get(path)
            return f"{path or ROOT}:interpolate", f"interpolate({mode})", None, None
        elif op in _ATEN_OPS:
            _, pos, key, _ = _ATEN_OPS[op]
            rate = _arg(args, kwargs, pos, key)
            if op == "istft" and rate is None:  # torch's default hop
                rate = _arg(args, kwargs, 1, "n_fft") // 4
        else:
            return None
        kind, _, _, classes = _ATEN_OPS[op]
        if op.startswith("conv_transpose"):  # the module that owns the weight, if any
            path = self.owners.get(args[1].data_ptr(), path)
        if classes and self.types.get(path) in classes:
            return path or ROOT, self.types[path], rate, self.modules.get(path)
        return f"{path or ROOT}:{kind}", kind, rate, None

    def record(self, func: Any, args: tuple, kwargs: dict, out: Any, seq: int) -> None:
        """Classify one finished op call (see :meth:`_Recorder._classify`)."""
        op = func.overloadpacket.__name__
        found = self._recognise(op, args, kwargs)
        inp, res = _main_input(args, kwargs), _first_tensor(out)
        if inp is None or res is None:
            return
        if (found is not None or op in _FEATURE_OPS) and _longer(inp[1], res[1]):
            self.explained = True
            for span in self.spans:
                span.explained = True
        if found is None:
            return
        name, kind, rate, module = found
        c = _Call(seq, name, func, args, kwargs, inp[0], inp[1], res[1], functional=True)
        self.book._classify(c, kind, rate, module)

    def enter(self, n: torch.fx.Node, env: dict) -> None:
        """Before node ``n`` runs: close the module calls it is not part of, open the ones it
        starts, and note each open call's first signal argument from outside it."""
        if n.op in ("placeholder", "get_attr"):
            return
        stack = n.meta.get("nn_module_stack") or {}
        keys = [k for k, (path, _) in stack.items() if path]  # the root is root_growth's
        while self.spans and (
            len(self.spans) > len(keys) or self.spans[-1].key != keys[len(self.spans) - 1]
        ):
            self._close(self.spans.pop())
        for key in keys[len(self.spans) :]:
            self.book.seq += 1
            self.spans.append(_Span(key, stack[key][0], self.book.seq, set()))
        for span in self.spans:
            span.nodes.add(n.name)
            if span.x is None:
                outside = [a for a in n.all_input_nodes if a.name not in span.nodes]
                span.x = next((env[a] for a in outside if _is_signal(env.get(a))), None)

    def leave(self, n: torch.fx.Node, result: Any) -> None:
        """After node ``n`` ran: its value is, so far, the output of every open call that it
        leaves (used by a node outside the call; an in-place op's result may not be)."""
        for span in self.spans:
            if any(span.key not in (u.meta.get("nn_module_stack") or {}) for u in n.users):
                span.y = result

    def _close(self, span: _Span) -> None:
        """A finished module call of an exported graph is a shape-growth stage like in eager
        discovery: the last axis at least doubled, and nothing inside explains it."""
        res = _first_tensor(span.y)
        if self.types.get(span.path) in _FEATURE_MODULE_NAMES and res and span.x is not None:
            span.explained = span.explained or _longer(span.x, res[1])
        if span.explained or span.x is None or res is None:
            grew = False
        else:
            grew = _growth(span.x, res[1])[0] >= MIN_SHAPE_GROWTH
            if grew:
                c = _Call(span.seq, span.path, None, (), {}, 0, span.x, res[1], functional=True)
                module = self.modules.get(span.path)
                self.book._add(c, "shape-growth", _growth(span.x, res[1])[0], module, None)
                self.explained = True
        if (grew or span.explained) and self.spans:
            self.spans[-1].explained = True

    def close_all(self) -> None:
        while self.spans:
            self._close(self.spans.pop())

    def root_growth(self, model: nn.Module, method: str, x: torch.Tensor, output: Any) -> None:
        """The whole model as a shape-growth stage (``"<root>"``, as eager discovery finds a
        hand-written upsampler that is the model itself) when its output is at least
        ``MIN_SHAPE_GROWTH`` times longer than its input and no recognised or feature op, nor
        a shape-growth submodule, lengthened the last axis."""
        res = _first_tensor(output)
        if self.explained or res is None or _growth(x, res[1])[0] < MIN_SHAPE_GROWTH:
            return
        call = getattr(model, method)
        c = _Call(0, ROOT, call, (x,), {}, 0, x, res[1], functional=True)
        self.book._add(
            c, "shape-growth", _growth(x, res[1])[0], model, _make_replay(call, (x,), {}, 0)
        )

    def call(self, func: Any, args: tuple, kwargs: dict | None) -> Any:
        kwargs = kwargs or {}
        self.book.seq += 1
        seq = self.book.seq
        out = func(*args, **kwargs)
        self.record(func, args, kwargs, out, seq)
        return out

    def failure(self, exc: BaseException) -> str:
        """One line naming the module of the fx node that raised, else the model."""
        path = self.path() or ""
        where = f"'{path or ROOT}' ({self.types.get(path, '?')})"
        if self.node is not None and str(self.node.target).startswith("_guards"):
            where = "the exported program's input checks"
        text = str(exc).strip().splitlines()
        return f"model failed in {where}: {type(exc).__name__}" + (f": {text[0]}" if text else "")


class _OpDispatch(TorchDispatchMode):
    """Every ATen op a TorchScript model runs, as the dispatcher sees it."""

    def __init__(self, watch: _OpWatch) -> None:
        super().__init__()
        self.watch = watch

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return self.watch.call(func, args, kwargs)


class _OpCalls(TorchFunctionMode):
    """Every ATen op an fx graph calls, before decomposition (``repeat_interleave`` stays)."""

    def __init__(self, watch: _OpWatch) -> None:
        super().__init__()
        self.watch = watch

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if not isinstance(func, torch._ops.OpOverload):
            return func(*args, **(kwargs or {}))
        return self.watch.call(func, args, kwargs)


class _NodeInterpreter(torch.fx.Interpreter):
    """Runs an fx graph node by node, telling ``watch`` which node runs."""

    def __init__(self, module: nn.Module, watch: _OpWatch) -> None:
        super().__init__(module)
        self.watch = watch

    def run_node(self, n: torch.fx.Node) -> Any:
        self.watch.enter(n, self.env)
        self.watch.node = n
        result = super().run_node(n)
        self.watch.leave(n, result)
        return result


def _run_compiled(
    model: nn.Module, inputs: torch.Tensor, method: str, want: set[str] | None
) -> tuple[_OpWatch, Any]:
    """One pass of a compiled model under :class:`_OpWatch` (an exported graph node by node,
    its flat outputs returned; TorchScript under a dispatch mode)."""
    watch = _OpWatch(model, want)
    try:
        with torch.no_grad():
            if isinstance(model, torch.jit.ScriptModule) or method != "forward":
                with _OpDispatch(watch):
                    output = getattr(model, method)(inputs)
            else:
                with _OpCalls(watch):
                    output = _NodeInterpreter(model, watch).run(inputs)
    except Exception as exc:
        raise StageError(watch.failure(exc)) from exc
    watch.close_all()
    watch.node = None
    watch.root_growth(model, method, inputs, output)
    return watch, output


def _run(
    model: nn.Module, inputs: torch.Tensor, method: str, want: set[str] | None
) -> tuple[_Recorder | _OpWatch, Any]:
    """One hooked forward pass of ``getattr(model, method)(inputs)`` under ``no_grad`` (a
    compiled model: :func:`_run_compiled`)."""
    if not callable(getattr(model, method, None)):
        raise UsageError(f"model {type(model).__name__} has no method '{method}'")
    if is_compiled(model):
        return _run_compiled(model, inputs, method, want)
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
