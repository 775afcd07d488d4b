"""Build upsampling layers from a spec (the ``layer`` command's flags).

Every layer maps ``(B, C, T)`` to ``(B, C, T')`` with ``T' ≈ stride * T``:

- ``transposed``: ``ConvTranspose1d(C, C, L, S)``, i.e. zero insertion by S then the kernel;
  ``T' = (T - 1) S + L``.
- ``subpixel``: ``Conv1d(C, C*S, L)`` then the 1-D periodic shuffle (channel ``c*S + r``
  becomes phase ``r`` of output channel ``c``); ``T' = (T - L + 1) S``.
- ``nearest`` / ``linear``: ``F.interpolate(scale_factor=S, mode=...)`` (PyTorch's own modes,
  ``align_corners=False`` for linear), then ``Conv1d(C, C, L)``; ``L = 0`` is interpolation
  alone. ``T' = S T - L + 1``.
- ``stretch``: zero insertion by S, then ``Conv1d(C, C, L)`` (``L = 0``: zero insertion alone).

Inits: ``default`` is PyTorch's under the seed; ``ones`` sets every weight to 1 (biases keep
their default init); ``icnr`` (subpixel only) gives every output phase the same sub-kernel and
bias, so the layer starts as nearest-neighbour upsampling followed by a convolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..bounds import CHANNELS, LENGTH, STRIDE, check_int
from ..errors import UsageError

LAYER_TYPES = ("transposed", "subpixel", "nearest", "linear", "stretch")
INITS = ("default", "ones", "icnr")
DEFAULT_LENGTH = {"transposed": None, "subpixel": 3, "nearest": 9, "linear": 9, "stretch": 9}
"""Kernel length when none is given; ``None`` means twice the stride (full overlap)."""


@dataclass(frozen=True)
class LayerSpec:
    """One upsampling layer: what the ``layer`` command's flags describe.

    Attributes:
        type: ``"transposed"`` (transposed convolution), ``"subpixel"`` (convolution and
            periodic shuffle), ``"nearest"``, ``"linear"`` or ``"stretch"`` (interpolation; see
            :data:`LAYER_TYPES` for every name).
        stride: the upsampling factor, 2 .. 256.
        length: the kernel length (0 .. 4096); None: the type's default (twice the stride
            for the convolutions).
        channels: input and output channels, 1 .. 1024.
        bias: give the convolution a bias.
        init: ``"default"`` (PyTorch's), ``"ones"`` or ``"icnr"`` (see
            :data:`INITS`).
    """

    type: str
    stride: int
    length: int | None = None
    channels: int = 1
    bias: bool = True
    init: str = "default"

    @property
    def kernel_length(self) -> int:
        """The kernel length in effect (the default resolved)."""
        if self.length is not None:
            return self.length
        default = DEFAULT_LENGTH[self.type]
        return 2 * self.stride if default is None else default

    def validate(self) -> LayerSpec:
        """Refuse impossible parameters with a one-line :class:`UsageError`."""
        if self.type not in LAYER_TYPES:
            raise UsageError(
                f"unknown layer type {self.type!r}; choose from {', '.join(LAYER_TYPES)}"
            )
        if self.init not in INITS:
            raise UsageError(f"unknown init {self.init!r}; choose from {', '.join(INITS)}")
        check_int(self.stride, "stride", STRIDE)
        length = self.kernel_length
        check_int(length, "length", LENGTH)
        if length == 0 and self.type in ("transposed", "subpixel"):
            raise UsageError(
                f"length 0 is only meaningful for interpolation layers, not {self.type}"
            )
        check_int(self.channels, "channels", CHANNELS)
        if self.init == "icnr" and self.type != "subpixel":
            raise UsageError(f"--init icnr applies to subpixel layers only, not {self.type}")
        if self.init == "ones" and length == 0:
            raise UsageError("--init ones needs a kernel (length > 0)")
        return self

    def describe(self) -> dict:
        """The spec as a JSON-ready dict, with the kernel length resolved."""
        return {**asdict(self), "length": self.kernel_length}


class Subpixel1d(nn.Module):
    """``Conv1d(C, C*S, L)`` then the 1-D periodic shuffle: ``(B, C, T) -> (B, C, S(T-L+1))``."""

    def __init__(self, channels: int, stride: int, length: int, bias: bool = True) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(channels, channels * stride, length, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        batch, _, frames = y.shape
        return (
            y.view(batch, -1, self.stride, frames)
            .transpose(2, 3)
            .reshape(batch, -1, frames * self.stride)
        )


class Interpolate1d(nn.Module):
    """``F.interpolate`` by an integer factor (or zero insertion), then an optional ``Conv1d``.

    ``mode`` is a PyTorch interpolation mode (``nearest``, ``linear``) or ``zeros`` for zero
    insertion (stretch): ``u[S n] = x[n]``, zeros in between.
    """

    def __init__(
        self, channels: int, stride: int, length: int, mode: str, bias: bool = True
    ) -> None:
        super().__init__()
        self.stride = stride
        self.mode = mode
        self.conv = nn.Conv1d(channels, channels, length, bias=bias) if length > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "zeros":
            up = x.new_zeros(*x.shape[:-1], x.shape[-1] * self.stride)
            up[..., :: self.stride] = x
        else:
            up = F.interpolate(x, scale_factor=self.stride, mode=self.mode)
        return up if self.conv is None else self.conv(up)


def build_layer(spec: LayerSpec, seed: int = 0) -> nn.Module:
    """Build the layer ``spec`` describes, initialised under ``torch.manual_seed(seed)``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make_layer(spec)


def make_layer(spec: LayerSpec) -> nn.Module:
    """Build the layer ``spec`` describes from the current random state."""
    spec.validate()
    length, channels, stride = spec.kernel_length, spec.channels, spec.stride
    if spec.type == "transposed":
        layer: nn.Module = nn.ConvTranspose1d(channels, channels, length, stride, bias=spec.bias)
    elif spec.type == "subpixel":
        layer = Subpixel1d(channels, stride, length, bias=spec.bias)
    else:
        mode = {"nearest": "nearest", "linear": "linear", "stretch": "zeros"}[spec.type]
        layer = Interpolate1d(channels, stride, length, mode, bias=spec.bias)
    with torch.no_grad():
        if spec.init == "ones":
            for name, param in layer.named_parameters():
                if name.endswith("weight"):
                    param.fill_(1.0)
        elif spec.init == "icnr":
            tie_phases(layer)
    return layer.eval()


def tie_phases(layer: Subpixel1d) -> None:
    """ICNR: copy phase 0's sub-kernel (and bias) to every phase, in place.

    Output channel ``c``'s phase ``r`` comes from conv channel ``c*S + r``; tying them makes
    every phase the same filter, so a constant input gives a constant output.
    """
    weight = layer.conv.weight.view(-1, layer.stride, *layer.conv.weight.shape[1:])
    weight.copy_(weight[:, :1].expand_as(weight))
    if layer.conv.bias is not None:
        bias = layer.conv.bias.view(-1, layer.stride)
        bias.copy_(bias[:, :1].expand_as(bias))


def edge_margin(spec: LayerSpec, margin_in: int = 0) -> int:
    """Output samples at each end touched by the input boundary (discard them before measuring).

    A boundary ``margin_in`` samples wide at the input grows to ``S * margin_in`` after the
    upsampler, plus the kernel's reach, with one input period of slack for interpolation.
    """
    return spec.stride * (margin_in + 1) + spec.stride * spec.kernel_length + spec.kernel_length


def polyphase_sums(weight: torch.Tensor, stride: int) -> torch.Tensor:
    """Polyphase sums ``P_r = Σ_{k ≡ r (mod S)} w[k]`` of a transposed-conv kernel.

    ``weight`` is ``(C_in, C_out, L)``; the sums are taken over the input channels too (all of
    them are driven by the probes), giving ``(C_out, S)``. The layer is tone-free on DC iff
    every row is constant (docs/method.md, Exact formulas).
    """
    c_in, c_out, length = weight.shape
    padded = F.pad(weight.sum(0), (0, (-length) % stride))
    return padded.view(c_out, -1, stride).sum(1)
