"""Layer stacks from TOML specs: parse, validate and build (the ``layer --config`` command).

A spec names the stack, its **output** sample rate and an ordered list of ``[[layer]]`` tables::

    name = "fig8_transposed"
    description = "three transposed convs, length 4, stride 2, with bias, on DC"
    sample_rate = 32000          # Hz at the output of the last layer
    seed = 0                     # optional
    channels = 4                 # optional, every layer's channels in and out
    probes = ["dc", "silence"]   # optional: which probes the figures show (all are run)

    [[layer]]                    # an upsampler: the `layer` command's flags as keys
    type = "transposed"
    stride = 2
    length = 4
    bias = true                  # optional
    init = "default"             # optional

    [[layer]]                    # non-upsampling blocks between upsamplers
    type = "leaky_relu"          # also "relu", and "conv" (keys length, bias, init)
    slope = 0.2

    [thresholds]                 # optional: the same keys as [tool.upsampcheck]

Every mistake is a one-line :class:`UsageError` that names the file, the layer and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..bounds import CHANNELS, TOTAL_FACTOR, check_int, check_rate, check_seed
from ..errors import UsageError
from ..measure.probes import PROBES
from .layers import LAYER_TYPES, LayerSpec, edge_margin, make_layer

BLOCK_TYPES = ("conv", "relu", "leaky_relu")
UPSAMPLER_KEYS = {"type": str, "stride": int, "length": int, "bias": bool, "init": str}
BLOCK_KEYS = {
    "conv": {"type": str, "length": int, "bias": bool, "init": str},
    "relu": {"type": str},
    "leaky_relu": {"type": str, "slope": float},
}
TOP_KEYS = {
    "name": str,
    "description": str,
    "sample_rate": float,
    "seed": int,
    "channels": int,
    "probes": list,
    "layer": list,
    "thresholds": dict,
}


@dataclass(frozen=True)
class BlockSpec:
    """A non-upsampling block: ``conv`` (Conv1d C→C, no padding), ``relu``, ``leaky_relu``."""

    type: str
    length: int = 0
    bias: bool = True
    init: str = "default"
    slope: float = 0.2

    def describe(self) -> dict[str, Any]:
        if self.type == "conv":
            return {"type": "conv", "length": self.length, "bias": self.bias, "init": self.init}
        if self.type == "leaky_relu":
            return {"type": "leaky_relu", "slope": self.slope}
        return {"type": self.type}


@dataclass
class StackSpec:
    """A stack: upsamplers (:class:`LayerSpec`) and blocks (:class:`BlockSpec`) in order."""

    name: str
    sample_rate: float
    layers: list[LayerSpec | BlockSpec]
    description: str = ""
    seed: int = 0
    channels: int = 1
    probes: tuple[str, ...] = PROBES
    thresholds: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def upsamplers(self) -> list[LayerSpec]:
        return [layer for layer in self.layers if isinstance(layer, LayerSpec)]

    @property
    def factor(self) -> int:
        """The stack's total upsampling factor."""
        return math.prod(layer.stride for layer in self.upsamplers)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "channels": self.channels,
            "layers": [layer.describe() for layer in self.layers],
        }


def typed(value: Any, kind: type, where: str, key: str) -> Any:
    """Check a TOML value's type (ints pass for floats, bools never pass for numbers)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        from ..parsed import describe

        got = type(value).__name__
        raise UsageError(
            f"{where}: key {key!r} must be {kind.__name__}, got {got} {describe(value)}"
        )
    return value


def parse_layer(table: Any, where: str, channels: int) -> LayerSpec | BlockSpec:
    """One ``[[layer]]`` table."""
    if not isinstance(table, dict):
        raise UsageError(f"{where}: each [[layer]] must be a table")
    kind = table.get("type")
    if kind is None:
        raise UsageError(f"{where}: missing key 'type' ({', '.join(LAYER_TYPES + BLOCK_TYPES)})")
    if kind not in LAYER_TYPES + BLOCK_TYPES:
        known = ", ".join(LAYER_TYPES + BLOCK_TYPES)
        raise UsageError(f"{where}: key 'type': unknown layer type {kind!r}; choose from {known}")
    allowed = UPSAMPLER_KEYS if kind in LAYER_TYPES else BLOCK_KEYS[kind]
    values = {}
    for key, value in table.items():
        if key not in allowed:
            raise UsageError(
                f"{where}: unknown key {key!r} for {kind}; allowed: {', '.join(allowed)}"
            )
        values[key] = typed(value, allowed[key], where, key)
    if kind in BLOCK_TYPES:
        block = BlockSpec(**values)
        if kind == "conv" and block.length < 1:
            raise UsageError(f"{where}: key 'length': a conv needs length >= 1")
        if block.init not in ("default", "ones"):
            raise UsageError(f"{where}: key 'init': a conv takes default or ones")
        if not math.isfinite(block.slope):
            raise UsageError(f"{where}: key 'slope' must be finite")
        return block
    if "stride" not in values:
        raise UsageError(f"{where}: missing key 'stride' for {kind}")
    spec = LayerSpec(channels=channels, **values)
    try:
        return spec.validate()
    except UsageError as exc:
        key = next((k for k in ("stride", "length", "init") if k in str(exc)), "type")
        raise UsageError(f"{where}: key {key!r}: {exc}") from None


def parse_stack(data: dict[str, Any], source: str) -> StackSpec:
    """Validate a parsed TOML document as a stack spec; errors name ``source`` and the key."""
    for key, value in data.items():
        if key not in TOP_KEYS:
            raise UsageError(f"{source}: unknown key {key!r}; allowed: {', '.join(TOP_KEYS)}")
        data[key] = typed(value, TOP_KEYS[key], source, key)
    if not data.get("layer"):
        raise UsageError(f"{source}: no [[layer]] tables; a stack needs at least one upsampler")
    rate = data.get("sample_rate")
    if rate is None:
        raise UsageError(f"{source}: missing key 'sample_rate' (Hz at the stack's output)")
    try:
        check_rate(rate)
    except UsageError as exc:
        raise UsageError(f"{source}: key 'sample_rate': {exc}") from None
    channels = data.get("channels", 1)
    try:
        check_int(channels, "channels", CHANNELS)
        check_seed(data.get("seed", 0))
    except UsageError as exc:
        raise UsageError(f"{source}: key {str(exc).split()[0].lstrip('-')!r}: {exc}") from None
    probes = tuple(data.get("probes", PROBES))
    if not probes or any(p not in PROBES for p in probes):
        raise UsageError(f"{source}: key 'probes' must list some of {', '.join(PROBES)}")
    layers = [
        parse_layer(table, f"{source}: layer {i}", channels)
        for i, table in enumerate(data["layer"], 1)
    ]
    if not any(isinstance(layer, LayerSpec) for layer in layers):
        raise UsageError(f"{source}: no upsampling layer (types: {', '.join(LAYER_TYPES)})")
    factor = math.prod(layer.stride for layer in layers if isinstance(layer, LayerSpec))
    if factor > TOTAL_FACTOR:
        raise UsageError(
            f"{source}: the stack upsamples by {factor} in all; at most {TOTAL_FACTOR} is measured"
        )
    return StackSpec(
        name=data.get("name", Path(source).stem),
        sample_rate=rate,
        layers=layers,
        description=data.get("description", ""),
        seed=data.get("seed", 0),
        channels=channels,
        probes=probes,
        thresholds=data.get("thresholds", {}),
        source=source,
    )


def load_stack(path: Path) -> StackSpec:
    """Read and validate a stack spec file."""
    from ..config import read_toml

    return parse_stack(read_toml(path), str(path))


def single_layer_stack(spec: LayerSpec, sample_rate: float) -> StackSpec:
    """A stack of one: what ``upsampcheck layer`` without ``--config`` checks."""
    return StackSpec(
        name=spec.type, sample_rate=sample_rate, layers=[spec.validate()], channels=spec.channels
    )


def make_block(spec: BlockSpec, channels: int) -> nn.Module:
    """Build a non-upsampling block from the current random state."""
    if spec.type == "relu":
        return nn.ReLU()
    if spec.type == "leaky_relu":
        return nn.LeakyReLU(spec.slope)
    conv = nn.Conv1d(channels, channels, spec.length, bias=spec.bias)
    if spec.init == "ones":
        with torch.no_grad():
            conv.weight.fill_(1.0)
    return conv


def build_stack(spec: StackSpec, seed: int | None = None) -> list[nn.Module]:
    """Every layer of the stack, in order, initialised one after another from one seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed if seed is None else seed)
        return [
            make_layer(layer) if isinstance(layer, LayerSpec) else make_block(layer, spec.channels)
            for layer in spec.layers
        ]


def block_margin(layer: LayerSpec | BlockSpec, margin_in: int) -> int:
    """Output samples at each end touched by the input boundary after this layer."""
    if isinstance(layer, LayerSpec):
        return edge_margin(layer, margin_in)
    return margin_in + layer.length


def output_length(layer: LayerSpec | BlockSpec, n: int) -> int:
    """The output length of ``layer`` for an input of ``n`` samples (no padding anywhere)."""
    if isinstance(layer, BlockSpec):
        return n - layer.length + 1 if layer.type == "conv" else n
    s, length = layer.stride, layer.kernel_length
    if layer.type == "transposed":
        return (n - 1) * s + length
    if layer.type == "subpixel":
        return (n - length + 1) * s
    return s * n - length + 1 if length > 0 else s * n
