"""Find the stages of a model that lengthen the time axis, and tap their inputs and outputs.

The time axis is the **last** dimension. One forward pass runs under ``torch.no_grad()`` with a
pre-hook and a forward hook on every submodule and a :class:`~torch.overrides.TorchFunctionMode`
that sees every torch function call. torch's global module hooks see the module calls outside
the model's tree: a module built inside ``forward`` (``julius.resample_frac(x, 1, 2)`` builds a
``ResampleFrac`` and calls it; ``torchaudio.transforms.Resample(...)(x)`` alike) or held in a
plain list. Such a call is treated like a submodule's and named after the module running it,
``"<innermost running module>:<class>"`` (``"<root>:ResampleFrac"``); the model's own modules
are left to their own hooks, so nothing fires twice. Hooks and mode are removed in ``finally``,
also when the model raises; a failure becomes a one-line
:class:`~upsampcheck.errors.StageError` naming the innermost module the exception came out of
(forward hooks use ``always_call=True``, so an exception the model catches itself does not
confuse the module stack).

What counts as a stage (``in`` = the call's first floating or complex tensor argument that is
not a Parameter, ``out`` = the first floating or complex tensor of its result):

1. **Recognised modules** -- ``nn.ConvTranspose1d/2d/3d`` (also parametrized or old-style
   weight-normed), ``nn.Upsample`` (and its subclasses), ``nn.PixelShuffle``, ``nn.Fold``. The
   module is the stage; everything that runs inside it (its ``F.conv_transpose1d``, the
   weight-norm parametrization, ...) is absorbed into it and never counted again.
2. **Recognised functional calls** -- ``F.conv_transpose1d/2d``, ``F.interpolate`` (and the
   ``torch._C._nn.upsample_*`` kernels when called directly), ``torch.repeat_interleave`` /
   ``Tensor.repeat_interleave``, ``F.pixel_shuffle``, ``F.fold``, ``torch.istft``. Named
   ``"<innermost running module>:<op>"``, or ``"<owner>:<op>"`` when a filter argument belongs
   to a submodule of the running one (a parameter or buffer, or a small tensor computed from
   one: a PQMF's ``updown_filter * subbands``), whose method the parent called
   (``pqmf:conv_transpose1d``). Only the outermost recognised call counts (torch pops
   the mode while a handler runs, and a depth counter guards the rest).
3. **shape-growth** (module granularity) -- a module call that is not recognised, whose
   ``out.shape[-1] >= 2 * in.shape[-1]`` (``MIN_SHAPE_GROWTH``) with the batch unchanged, and
   inside which nothing already explains the growth: no recognised module or call, no nested
   shape-growth module, and no feature op (``Linear``, RNNs, attention, ``matmul``, ``einsum``:
   their last axis is features in ``(B, T, C)`` layouts) lengthened the last axis. It catches
   hand-written upsamplers: the 1-D subpixel reshape ``view(B, C, S, T).permute(0, 1, 3, 2)
   .reshape(B, C, T * S)``, zero insertion ``y = x.new_zeros(B, C, T * S); y[..., ::S] = x``,
   julius' polyphase resampler (``conv1d`` with ``stride=old_sr`` giving ``new_sr`` phase
   channels, interleaved by ``transpose(1, 2).reshape(..., -1)``: x2 for ``resample_frac(x, 1,
   2)``; its way back down, ``resample_frac(x, 2, 1)``, halves the axis and is no stage) ...
   Named by the module, ``module`` set, ``replay`` = the module when it was called with
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
submodules where no hook sees them (and keep no trace of modules built inside ``forward``: a
julius resample inside a traced or exported model is not found there):
:mod:`.discover_compiled` watches them at the ATen level and names their stages as this module
does. :class:`Stage` and the rules shared by both
paths (rate factor, other-axis growth, names made unique) live in :mod:`.stages`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as nn_module
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from upsampcheck.errors import StageError, UsageError
from upsampcheck.subjects.digest import digest_input
from upsampcheck.subjects.discover_compiled import is_compiled, module_types, run_compiled
from upsampcheck.subjects.owners import TensorOwners
from upsampcheck.subjects.stages import (
    FEATURE_MODULES,
    MIN_SHAPE_GROWTH,
    ROOT,
    TOL,
    Call,
    Stage,
    StageLog,
    Want,
    arg,
    failure_message,
    first_tensor,
    grows,
    growth,
    is_signal,
    longer,
    main_input,
    rate_arg,
    upsample_mode,
)

__all__ = ["Discovery", "Stage", "discover", "is_compiled", "module_types", "tap"]

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
    getattr(torch._C._nn, name): mode
    for name in dir(torch._C._nn)
    if (mode := upsample_mode(name)) is not None
}
# Ops whose last axis is features, not time (see FEATURE_MODULES).
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
_MODULES = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Upsample,
    nn.PixelShuffle,
    nn.Fold,
)


@dataclass
class Discovery:
    """The stages of one model: time-axis stages in execution order, and other-axis growth."""

    stages: list[Stage]
    other_axis: list[Stage]
    output_index: str
    output_shape: tuple[int, ...]
    slope: float | None = None
    """Output samples per input sample between this pass and one at another input length
    (None: one pass): the model's factor with constant padding and cropping cancelled."""
    input_free: tuple[str, ...] = ()
    """Stages whose input does not depend on the model's input (:mod:`~.model.input_free`)."""
    forward_cost: Any = None
    """The model's own forward peak (a :class:`~.model.footprint.ForwardCost`) from two short
    passes; None where not measured."""


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


def _func_kind(op: str, func: Any, args: tuple, kwargs: dict) -> tuple[str, Any]:
    """Kind string and per-axis rate argument (None: use the length ratio) of a call."""
    if func in _UPSAMPLE_MODES:
        return f"interpolate({_UPSAMPLE_MODES[func]})", None
    rate = rate_arg(op, args, kwargs)
    if op == "interpolate":
        return f"interpolate({arg(args, kwargs, 3, 'mode') or 'nearest'})", rate
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


class _Recorder(TorchFunctionMode):
    """Hook callbacks + torch function mode: the stages of one eager pass go to ``log``."""

    def __init__(self, names: dict[nn.Module, str], want: Want = None) -> None:
        super().__init__()
        self.names = names
        self.thread = threading.get_ident()
        self.log = StageLog(want)
        self.stack: list[_Frame] = []
        self.depth = 0
        self.error: tuple[BaseException, _Frame] | None = None
        self.owners = TensorOwners(names)

    # -- module hooks ---------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        parent = self.stack[-1] if self.stack else None
        muted = parent is not None and (
            parent.muted or isinstance(parent.module, (_MODULES, parametrize.ParametrizationList))
        )
        base = self.names.get(module)
        if base is None:  # built or held outside the model's tree: named after its caller
            base = f"{parent.name if parent else ROOT}:{_type_name(module)}"
        name = self.log.unique(base)
        self.stack.append(_Frame(name, module, args, kwargs, self.log.next_seq(), muted))

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

    # -- modules outside the model's tree (global hooks) ------------------------------------
    def _foreign(self, module: nn.Module) -> bool:
        """True for a module call the per-module hooks do not see: a module built inside
        ``forward`` (``julius.resample_frac``'s ``ResampleFrac``) or held in a plain list or
        attribute, called in the thread that runs the pass."""
        return module not in self.names and threading.get_ident() == self.thread

    def foreign_pre_hook(self, module: nn.Module, args: tuple) -> None:
        if self._foreign(module):
            self.pre_hook(module, args, {})  # torch's global pre-hooks see no kwargs

    def foreign_post_hook(self, module: nn.Module, args: tuple, *rest: Any) -> None:
        # (kwargs, output) normally; (output,) only when torch calls it as forward raises.
        if not self._foreign(module):
            return
        kwargs, output = (rest[0], rest[1]) if len(rest) == 2 else ({}, None)
        if kwargs and self.stack and self.stack[-1].module is module:
            self.stack[-1].kwargs = kwargs
        self.post_hook(module, args, kwargs, output)

    def _finish(self, f: _Frame, output: Any) -> bool:
        """Record a finished module call if it is a stage; True if it explains time growth."""
        inp, out = main_input(f.args, f.kwargs), first_tensor(output)
        if f.muted or inp is None or out is None:
            return f.explained
        c = Call(f.seq, f.name, f.module, f.args, f.kwargs, inp[0], inp[1], out[1])
        time_ratio = growth(c.x, c.y)[0]
        if isinstance(f.module, _MODULES):
            self.log.add_recognised(c, *_module_kind(f.module), f.module)
            return time_ratio > 1 + TOL
        if isinstance(f.module, FEATURE_MODULES):
            return f.explained or longer(c.x, c.y)
        if f.explained or not grows(c.x, c.y):
            return f.explained
        only_input = sum(is_signal(a) for a in (*f.args, *f.kwargs.values())) == 1
        self.log.add_shape_growth(c, f.module, c.replay() if only_input else None)
        return True

    # -- functional calls -------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        op = _FUNCS.get(func) or ("interpolate" if func in _UPSAMPLE_MODES else None)
        feature = func in _FEATURE_FUNCS
        if self.depth:
            return func(*args, **kwargs)
        if op is None and not feature:
            out = func(*args, **kwargs)
            self.owners.derive(args, kwargs, out)
            return out
        seq = self.log.next_seq()
        self.depth += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.depth -= 1
        frame = self.stack[-1] if self.stack else None
        inp, res = main_input(args, kwargs), first_tensor(out)
        if inp is None or res is None or (frame is not None and frame.muted):
            return out
        base = f"{frame.name if frame else ROOT}:{op}"
        owner = self.owners.owner(args, kwargs, skip=inp[1])
        running = frame.name if frame else ROOT
        if owner and (running == ROOT or owner.startswith(running + ".")):
            base = f"{owner}:{op}"  # a filter of a submodule, applied by a method it lends
        c = Call(seq, base, func, args, kwargs, inp[0], inp[1], res[1], functional=True)
        c.learned = self.owners.learned(args, kwargs, skip=inp[1])
        if frame is not None and longer(c.x, c.y):
            frame.explained = True  # recognised or feature op: the module's growth is explained
        if op is not None and not (frame is not None and isinstance(frame.module, _MODULES)):
            self.log.add_recognised(c, *_func_kind(op, func, args, kwargs), None)
        return out

    def failure(self, exc: BaseException) -> str:
        """One-line message naming the innermost module that ``exc`` came out of."""
        if self.error is not None and self.error[0] is exc:
            frame = self.error[1]
        else:  # raised outside any module call that is hooked: the innermost one still running
            frame = self.stack[-1] if self.stack else None
        where = f"'{frame.name}' ({_type_name(frame.module)})" if frame else f"'{ROOT}'"
        return failure_message(where, exc)


def _run_eager(
    model: nn.Module, inputs: torch.Tensor, method: str, want: Want
) -> tuple[StageLog, Any]:
    """One hooked pass of ``getattr(model, method)(inputs)`` under ``no_grad``; hooks are
    removed also when the model raises."""
    names = {m: (n or ROOT) for n, m in model.named_modules()}
    rec = _Recorder(names, want)
    hooked = [m for m in names if m is not model or method == "forward"]
    handles = []
    try:
        handles.append(nn_module.register_module_forward_pre_hook(rec.foreign_pre_hook))
        handles.append(
            nn_module.register_module_forward_hook(
                rec.foreign_post_hook, with_kwargs=True, always_call=True
            )
        )
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
    return rec.log, output


def _run(model: nn.Module, inputs: torch.Tensor, method: str, want: Want) -> tuple[StageLog, Any]:
    """One discovery pass of ``getattr(model, method)(inputs)``: its stages and its output."""
    if not callable(getattr(model, method, None)):
        raise UsageError(f"model {type(model).__name__} has no method '{method}'")
    if is_compiled(model):
        return run_compiled(model, inputs, method, want)
    return _run_eager(model, inputs, method, want)


def _analysed(output: Any) -> tuple[str, torch.Tensor]:
    """Index string and value of the output's first real floating tensor."""
    found = first_tensor(output, real=True)
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
    return discover_digested(model, inputs, method, None)[0]


def discover_digested(
    model: nn.Module, inputs: torch.Tensor, method: str = "forward",
    keep: Callable[[torch.Tensor, torch.Tensor], Any] | None = digest_input,
) -> tuple[Discovery, dict[str, Any], torch.Tensor]:  # fmt: skip
    """:func:`discover`, and what ``keep`` made of every stage's ``(input, output)`` while the
    model ran (by default the input's :func:`~.digest.digest`, so that the pass can stand in
    for the input-free test's first one), and the analysed output (detached)."""
    log, output = _run(model, inputs, method, keep)
    index, y = _analysed(output)
    stages = log.ordered()
    found = Discovery(
        stages=[s for s in stages if s.time_axis],
        other_axis=[s for s in stages if not s.time_axis],
        output_index=index,
        output_shape=tuple(y.shape),
    )
    return found, log.taps, y.detach()


def tap(
    model: nn.Module,
    inputs: torch.Tensor,
    stages: list[Stage],
    method: str = "forward",
    reducers: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """One forward pass returning the analysed output and each stage's ``(input, output)``,
    or, with ``reducers`` (``{name: reduce(input, output)}``), what each stage's reducer made
    of them inside the pass.

    ``inputs`` may have another batch size than at :func:`discover`. Tensors are detached
    and stay on the model's device.
    """
    want = reducers if reducers is not None else {s.name for s in stages}
    log, output = _run(model, inputs, method, want)
    missing = sorted(set(want) - log.taps.keys())
    if missing:
        message = f"stages did not run in the tap pass: {', '.join(missing)}"
        raise StageError(message + _fixed_length_hint(stages, inputs, output))
    return _analysed(output)[1].detach(), log.taps


def _fixed_length_hint(stages: list[Stage], inputs: torch.Tensor, output: Any) -> str:
    """Why the whole-model stage (``"<root>"``, a shape-growth stage) can vanish in the tap
    pass: the output no longer grows with the input, as a TorchScript trace that baked in its
    example's output length (``y[..., :4 T]`` at the example's ``T``) does for longer inputs.
    ``""`` when that is not what happened."""
    root = next((s for s in stages if s.name == ROOT), None)
    found = first_tensor(output, real=True)
    if root is None or found is None or inputs.ndim == 0:
        return ""
    length, out_len = inputs.shape[-1], found[1].shape[-1]
    if out_len / length >= MIN_SHAPE_GROWTH or out_len / length >= root.length_ratio / 2:
        return ""
    return (
        f"; the output length does not follow the input ({root.out_shape[-1]} samples for "
        f"{root.in_shape[-1]} in at discovery, {out_len} for {length} now): the model (or its "
        f"trace) fixes its output length; trace or export it at {length} input samples or "
        "with a dynamic time axis, or check the eager model"
    )
