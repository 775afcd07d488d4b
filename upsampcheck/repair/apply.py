"""Find a model's repairable stages and tie their phase sums in place (:mod:`.ties`).

Repairable: a ``ConvTranspose1d`` module (plain, old-style ``weight_norm`` with ``weight_g``/
``weight_v``, or ``parametrizations.weight_norm`` with ``original0``/``original1``) and the
tool's own :class:`~upsampcheck.subjects.layers.Subpixel1d`. With weight norm the effective
kernel ``w = g·v/‖v‖`` is tied and written back as ``v' = w'``, ``g' = ‖w'‖`` (the norm over
every dimension but weight norm's ``dim``), which is what the parametrization's own
``right_inverse`` does: the effective weight is then ``w'`` to rounding.

Refused, with the reason: interpolation stages (their kernels have zeros at every ``m·fs_in``,
so DC makes no lines there), a functional call (its filter is computed in code, not held by a
module), other kinds of stage, other parametrizations, and a kernel with a phase that holds no
tap (:class:`.ties.Untieable`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..subjects.layers import Interpolate1d, Subpixel1d
from . import ties

INTERPOLATION = (
    "an interpolation stage: its kernel (box or triangle) has zeros at every multiple of its "
    "input rate, so DC makes no lines there and tying has nothing to remove"
)

NONLINEAR = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
             nn.Softplus, nn.Hardtanh, nn.Mish, nn.SELU)  # fmt: skip


class Refused(ValueError):
    """A stage the remedy cannot repair; the message says why."""


@dataclass
class Target:
    """A repairable stage: its module, kind and stride, and how its weight is held."""

    name: str
    kind: str  # "transposed" or "subpixel"
    module: nn.Module
    stride: int
    dilation: int = 1
    norm: str = ""  # "", "weight_norm" (old, weight_g/weight_v) or "parametrized"
    dim: int | None = 0


@dataclass
class StageTie:
    """What tying did to one stage: the effective kernels (and subpixel biases) before and
    after, float64 copies, and the per-pair phase sums before."""

    name: str
    kind: str
    stride: int
    before: torch.Tensor
    after: torch.Tensor
    bias_before: torch.Tensor | None = None
    bias_after: torch.Tensor | None = None
    dilation: int = 1

    @property
    def relative_change_db(self) -> float:
        """``20 log10(‖Δ‖ / ‖w‖)`` over the kernel (biases included for subpixel)."""
        change = (self.after - self.before).pow(2).sum()
        total = self.before.pow(2).sum()
        if self.bias_before is not None:
            change = change + (self.bias_after - self.bias_before).pow(2).sum()
            total = total + self.bias_before.pow(2).sum()
        if float(change) == 0.0:
            return float("-inf")
        return float(10 * torch.log10(change / total))

    @property
    def changed(self) -> bool:
        same = torch.equal(self.before, self.after)
        if self.bias_before is not None:
            same = same and torch.equal(self.bias_before, self.bias_after)
        return not same


def _old_weight_norm(module: nn.Module):
    from torch.nn.utils.weight_norm import WeightNorm

    hooks = [h for h in module._forward_pre_hooks.values() if isinstance(h, WeightNorm)]
    return next((h for h in hooks if h.name == "weight"), None)


def find_target(model: nn.Module, name: str, kind: str) -> Target:
    """The repairable stage ``name`` (a discovered stage's name and report kind) of ``model``,
    or :class:`Refused` with the reason."""
    if kind.startswith(("interpolate", "Upsample", "repeat_interleave")):
        raise Refused(f"{name} is {INTERPOLATION}")
    if ":" in name:
        raise Refused(
            f"{name} is a functional call ({kind}): its filter is computed in the model's code, "
            "not held by a module whose weights a checkpoint stores; tie it in the code"
        )
    try:
        module = model if name == "<root>" else model.get_submodule(name)
    except AttributeError:
        raise Refused(f"{name}: no such submodule in the model") from None
    if isinstance(module, Interpolate1d):
        raise Refused(f"{name} is {INTERPOLATION}")
    if isinstance(module, Subpixel1d):
        if _old_weight_norm(module.conv) is not None or hasattr(module.conv, "parametrizations"):
            raise Refused(f"{name}: a subpixel conv with a parametrized weight is not supported")
        return Target(name, "subpixel", module, module.stride)
    if not isinstance(module, nn.ConvTranspose1d) and any(
        isinstance(child, NONLINEAR) for child in module.modules()
    ):
        raise Refused(
            f"{name} is a {type(module).__name__} ({kind}) with a nonlinearity inside: its lines "
            "can be an offset the nonlinearity rectifies within the stage, which no tie of a "
            "kernel's phase sums removes"
        )
    if not isinstance(module, nn.ConvTranspose1d):
        raise Refused(
            f"{name} is a {type(module).__name__} ({kind}), not a ConvTranspose1d or Subpixel1d: "
            "the remedy ties the phase sums of a kernel it can find"
        )
    stride, dilation = int(module.stride[0]), int(module.dilation[0])
    target = Target(name, "transposed", module, stride, dilation)
    from torch.nn.utils import parametrize

    if parametrize.is_parametrized(module):
        plist = getattr(module.parametrizations, "weight", None)
        kinds = [type(p).__name__ for p in plist] if plist is not None else []
        others = [n for n in module.parametrizations.keys() if n != "weight"]
        if kinds != ["_WeightNorm"] or others:
            raise Refused(
                f"{name}: its weight is parametrized ({', '.join(kinds + others)}), not by weight "
                "norm alone: the repair cannot write a corrected kernel back through it"
            )
        target.norm, target.dim = "parametrized", plist[0].dim
    elif (hook := _old_weight_norm(module)) is not None:
        target.norm, target.dim = "weight_norm", hook.dim
    others = [h for h in module._forward_pre_hooks.values() if h is not _old_weight_norm(module)]
    if others:
        raise Refused(
            f"{name}: its weight is computed by a forward pre-hook ({type(others[0]).__name__},"
            " such as the old spectral norm's): a corrected kernel written there would not last"
        )
    return target


def effective_weight(target: Target) -> torch.Tensor:
    """The kernel the stage computes with (weight norm applied), detached."""
    m = target.module
    if target.kind == "subpixel":
        return m.conv.weight.detach()
    if target.norm == "weight_norm":
        return torch._weight_norm(m.weight_v, m.weight_g, target.dim).detach()
    return m.weight.detach()


def set_weight(target: Target, weight: torch.Tensor) -> None:
    """Write the corrected effective kernel back into the module's own parameters."""
    m = target.module
    with torch.no_grad():
        if target.norm == "parametrized":
            m.parametrizations.weight.original1.copy_(weight)
            g = torch.norm_except_dim(weight, 2, target.dim)
            m.parametrizations.weight.original0.copy_(g)
        elif target.norm == "weight_norm":
            m.weight_v.copy_(weight)
            m.weight_g.copy_(torch.norm_except_dim(weight, 2, target.dim))
            m.weight = torch._weight_norm(m.weight_v, m.weight_g, target.dim)
        elif target.kind == "subpixel":
            m.conv.weight.copy_(weight)
        else:
            m.weight.copy_(weight)


def _copy(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A float64 CPU copy (the figures are computed in numpy)."""
    return None if tensor is None else tensor.detach().double().cpu().clone()


def tie_target(target: Target) -> StageTie:
    """Tie ``target``'s phase sums in place; :class:`Refused` for a kernel that cannot be."""
    weight = effective_weight(target)
    if target.kind == "subpixel":
        bias = target.module.conv.bias
        bias = None if bias is None else bias.detach()
        tied, tied_bias = ties.tie_subpixel(weight, bias, target.stride)
        record = StageTie(target.name, target.kind, target.stride, _copy(weight), _copy(tied),
                          _copy(bias), _copy(tied_bias))  # fmt: skip
        if tied_bias is not None:
            with torch.no_grad():
                target.module.conv.bias.copy_(tied_bias)
    else:
        try:
            tied = ties.tie_transposed(weight, target.stride, target.dilation)
        except ties.Untieable as why:
            raise Refused(f"{target.name}: {why}") from None
        record = StageTie(
            target.name, target.kind, target.stride, _copy(weight), _copy(tied),
            dilation=target.dilation,
        )  # fmt: skip
    if record.changed:
        set_weight(target, tied)
    return record
