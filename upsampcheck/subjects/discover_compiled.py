"""Stage discovery inside compiled models: TorchScript, and the flat graph of a loaded
torch.export archive, which run their submodules where no forward hook sees them.

They are watched at the ATen level instead (:class:`_OpWatch`). An exported graph runs node by
node (``torch.fx.Interpreter``) under a function mode that sees every ATen op it calls; each
node's ``nn_module_stack`` names the module it came from. TorchScript runs under a
:class:`~torch.utils._python_dispatch.TorchDispatchMode`, which sees the ops after decomposition
and knows no modules. Recognised ops: transposed convolutions (``aten.conv_transpose*d``,
``aten.convolution`` / ``aten._convolution`` with ``transposed``), ``aten.upsample_*``,
``aten.repeat_interleave`` (exported graphs only: the dispatcher sees an int count as expand +
reshape), ``aten.pixel_shuffle``, ``aten.col2im`` (fold) and ``aten.istft``, with the rate
factors of :mod:`.discover`. A transposed conv is named after the module owning its
weight Parameter, other ops after the node's module; when that module was written as the
matching class (``ConvTranspose1d``, ``Upsample``, ``PixelShuffle``, ``Fold``: from
``RecursiveScriptModule.original_name`` or the stack's class names) the stage is named and
kinded as eager discovery names it (``"decoder"``, ``"ConvTranspose1d"``), else
``"<module>:<op>"`` or ``"<root>:<op>"``. So the same model gives the same stages in every
format where these ops carry the upsampling.

Shape-growth: in an exported graph, each module call (the consecutive nodes its
``nn_module_stack`` entry covers) is a shape-growth stage as in eager discovery. TorchScript
knows no modules: there only the model itself is found (``"<root>"``, replayed by calling the
model: when its output is at least twice as long as its input and no recognised or feature op
lengthened the last axis), nor is ``repeat_interleave`` with an int count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from upsampcheck.errors import StageError
from upsampcheck.subjects.dispatch_mode import PlainDispatchMode
from upsampcheck.subjects.stages import (
    FEATURE_MODULES,
    ROOT,
    Call,
    StageLog,
    Want,
    failure_message,
    first_tensor,
    grows,
    is_signal,
    longer,
    main_input,
    rate_arg,
    upsample_mode,
)

# Upsampling ATen ops: op name -> (kind, classes of the module that, running the op, is the
# stage itself).
_ATEN_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "conv_transpose1d": ("conv_transpose1d", ("ConvTranspose1d",)),
    "conv_transpose2d": ("conv_transpose2d", ("ConvTranspose2d",)),
    "conv_transpose3d": ("conv_transpose3d", ("ConvTranspose3d",)),
    "repeat_interleave": ("repeat_interleave", ()),
    "pixel_shuffle": ("pixel_shuffle", ("PixelShuffle",)),
    "col2im": ("fold", ("Fold",)),
    "istft": ("istft", ()),
}
_UPSAMPLE_CLASSES = ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d")
# ATen ops whose last axis is features (see upsampcheck.subjects.stages.FEATURE_MODULES).
_FEATURE_OPS = {"linear", "addmm", "mm", "bmm", "baddbmm", "matmul", "einsum", "bilinear"}
_FEATURE_OPS |= {"_scaled_dot_product_flash_attention", "scaled_dot_product_attention"}
_FEATURE_OPS |= {"_scaled_dot_product_efficient_attention", "_native_multi_head_attention"}
_FEATURE_OPS |= {"lstm", "gru", "rnn_tanh", "rnn_relu"}
_FEATURE_MODULE_NAMES = {c.__name__ for c in (*FEATURE_MODULES, nn.RNN, nn.LSTM, nn.GRU)}


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
    runs (exported graphs) or the module that owns a transposed conv's weight. The stages
    go to ``log``."""

    def __init__(self, model: nn.Module, want: Want) -> None:
        self.log = StageLog(want)
        self.types = module_types(model)
        self.modules = dict(model.named_modules())
        self.owners = {p.data_ptr(): n.rpartition(".")[0] for n, p in model.named_parameters()}
        self.node: torch.fx.Node | None = None
        self.explained = False  # a recognised or feature op lengthened the last axis
        self.spans: list[_Span] = []  # the module calls the running node is inside

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
        elif (mode := upsample_mode(op)) is not None:
            if self.types.get(path) in _UPSAMPLE_CLASSES:
                return path or ROOT, f"Upsample({mode})", None, self.modules.get(path)
            return f"{path or ROOT}:interpolate", f"interpolate({mode})", None, None
        elif op in _ATEN_OPS:
            rate = rate_arg(_ATEN_OPS[op][0], args, kwargs)
            if rate is None and op.startswith("conv_transpose"):
                rate = 1  # torch's default stride: longer only by the kernel, not a stage
        else:
            return None
        kind, classes = _ATEN_OPS[op]
        if op.startswith("conv_transpose"):  # the module that owns the weight, if any
            path = self.owners.get(args[1].data_ptr(), path)
        if classes and self.types.get(path) in classes:
            return path or ROOT, self.types[path], rate, self.modules.get(path)
        return f"{path or ROOT}:{kind}", kind, rate, None

    def call(self, func: Any, args: tuple, kwargs: dict | None) -> Any:
        """Run one ATen op and classify the finished call: a recognised op is added as in
        :meth:`StageLog.add_recognised`; it, or a feature op, lengthening the last axis
        explains the growth of every open module call."""
        kwargs = kwargs or {}
        seq = self.log.next_seq()
        out = func(*args, **kwargs)
        op = func.overloadpacket.__name__
        found = self._recognise(op, args, kwargs)
        inp, res = main_input(args, kwargs), first_tensor(out)
        if inp is None or res is None:
            return out
        if (found is not None or op in _FEATURE_OPS) and longer(inp[1], res[1]):
            self.explained = True
            for span in self.spans:
                span.explained = True
        if found is not None:
            name, kind, rate, module = found
            c = Call(seq, name, func, args, kwargs, inp[0], inp[1], res[1], functional=True)
            self.log.add_recognised(c, kind, rate, module)
        return out

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
            self.spans.append(_Span(key, stack[key][0], self.log.next_seq(), set()))
        for span in self.spans:
            span.nodes.add(n.name)
            if span.x is None:
                outside = [a for a in n.all_input_nodes if a.name not in span.nodes]
                span.x = next((env[a] for a in outside if is_signal(env.get(a))), None)

    def leave(self, n: torch.fx.Node, result: Any) -> None:
        """After node ``n`` ran: its value is, so far, the output of every open call that it
        leaves (used by a node outside the call; an in-place op's result may not be)."""
        for span in self.spans:
            if any(span.key not in (u.meta.get("nn_module_stack") or {}) for u in n.users):
                span.y = result

    def _close(self, span: _Span) -> None:
        """A finished module call of an exported graph is a shape-growth stage like in eager
        discovery: the last axis at least doubled, and nothing inside explains it."""
        res = first_tensor(span.y)
        if self.types.get(span.path) in _FEATURE_MODULE_NAMES and res and span.x is not None:
            span.explained = span.explained or longer(span.x, res[1])
        if span.explained or span.x is None or res is None:
            grew = False
        else:
            grew = grows(span.x, res[1])
            if grew:
                c = Call(span.seq, span.path, None, (), {}, 0, span.x, res[1], functional=True)
                self.log.add_shape_growth(c, self.modules.get(span.path), None)
                self.explained = True
        if (grew or span.explained) and self.spans:
            self.spans[-1].explained = True

    def close_all(self) -> None:
        """Close the module calls still open when the graph has run."""
        while self.spans:
            self._close(self.spans.pop())

    def root_growth(self, model: nn.Module, method: str, x: torch.Tensor, output: Any) -> None:
        """The whole model as a shape-growth stage (``"<root>"``, as eager discovery finds a
        hand-written upsampler that is the model itself) when its output is at least
        ``MIN_SHAPE_GROWTH`` times longer than its input and no recognised or feature op, nor
        a shape-growth submodule, lengthened the last axis."""
        res = first_tensor(output)
        if self.explained or res is None or not grows(x, res[1]):
            return
        c = Call(0, ROOT, getattr(model, method), (x,), {}, 0, x, res[1], functional=True)
        self.log.add_shape_growth(c, model, c.replay())

    def failure(self, exc: BaseException) -> str:
        """One line naming the module of the fx node that raised, else the model."""
        path = self.path() or ""
        where = f"'{path or ROOT}' ({self.types.get(path, '?')})"
        if self.node is not None and str(self.node.target).startswith("_guards"):
            where = "the exported program's input checks"
        return failure_message(where, exc)


class _OpDispatch(PlainDispatchMode):
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


def run_compiled(
    model: nn.Module, inputs: torch.Tensor, method: str, want: Want
) -> tuple[StageLog, Any]:
    """One pass of a compiled model under ``no_grad``, watched by :class:`_OpWatch` (an
    exported graph node by node, its flat outputs returned; TorchScript, or another method
    than ``forward``, under a dispatch mode): its stages and its output.

    Raises:
        StageError: the model raised (one line naming the module of the node that ran).
    """
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
    return watch.log, output
