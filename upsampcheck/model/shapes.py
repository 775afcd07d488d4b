"""The input shapes tried when ``--input-shape`` is not given, from what the model says.

What the model's modules say before it runs: every conv's input width (in registration order,
a ``conv_pre``/``input``-like one first), the longest kernel (a conv's, or an STFT's ``n_fft``:
an input shorter than it cannot run) and the product of the downsampling strides (an encoder
that halves the length four times wants a multiple of 16).

What its errors say when a shape fails: the channels it wanted (torch's "expected input[1, 80,
256] to have 512 channels"), a "multiple of N" of its own, or a kernel, padding or ``n_fft``
longer than the signal it reached. Each hint makes the next candidate; the rest are the widths
by the lengths, up to :data:`MAX_ATTEMPTS` candidates and :data:`SEARCH_SECONDS` in all.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from torch import nn

from ..subjects.discover import module_types

DISCOVERY_FRAMES = 256
"""Frames of an inferred input at discovery (its length is set from the rates after)."""
CANDIDATE_CHANNELS = (1, 2, 80, 100, 128)
"""Inputs a model of this kind usually takes, besides its convs' widths: mono and stereo
waveforms, and the common mel sizes."""
MAX_ATTEMPTS = 24
"""Candidate shapes tried at most (each failed one costs one short forward pass)."""
SEARCH_SECONDS = 120.0
"""No further candidate is tried after this long (a large model's forward is slow)."""
MAX_UNIT = 4096
"""The longest stride product a length is rounded to (beyond it: the strides' lcm, or none)."""
MAX_LENGTH = 2**16
"""The longest input a candidate has (a kernel or hint asking for more is not followed)."""
FIRST_NAMES = re.compile(r"(?:^|_)(?:pre|in|input|first|stem|embed)(?:_|$)")
"""A conv whose own name says it reads the model input (``conv_pre``, ``input_conv``)."""
_WIDTH_TYPES = ("Conv1d", "ConvTranspose1d")
MEL_HEIGHTS = (80, 100, 128)
"""The heights tried first for a model whose first layer is a 2-D conv with one input channel
(it reads a spectrogram ``(B, 1, n_mels, T)``, as DiffWave's upsampler does): the common mel
sizes, never a 1-bin spectrogram before them."""

_CHANNELS = (
    re.compile(r"to have (\d+) channels"),  # torch's conv: "expected input[...] to have N"
    re.compile(r"weight of shape \[(\d+)\] and input of shape \[\d+, \d+"),  # torch's norms
    re.compile(r"\bexpected (?:[a-z_]+ ){0,3}(\d+) (?:input )?channels", re.IGNORECASE),
    re.compile(r"\b(\d+) (?:input )?channels (?:are |were )?expected", re.IGNORECASE),
)
_MULTIPLE = re.compile(r"(?:multiple of|divisible by) (\d+)", re.IGNORECASE)
_LONGER = (  # the signal's length there and the kernel's (padding: left, right, length)
    re.compile(r"input size per channel: \((?:\d+ x )*(\d+)\)\. Kernel size: \((?:\d+ x )*(\d+)"),
    re.compile(r"padding \((\d+), (\d+)\) at dimension \d+ of input \[(?:\d+, )*(\d+)\]"),
    re.compile(r"n_fft < (\d+), but got n_fft=(\d+)"),
    re.compile(r"dimension \d+ is (\d+) but size is (\d+)"),  # unfold
)
_EXTRA_AXIS = re.compile(
    r"Expected 2D \(unbatched\) or 3D \(batched\) input to conv(?:_transpose)?1d, but got "
    r"input of size: \[\d+(?:, \d+){3}\]"
)
"""A 1-D conv reached with four axes: the model makes a channel axis of its own (Vocos's mel
front end turns ``(B, T)`` audio into ``(B, n_mels, frames)``), so the input has no channel
axis: ``(T,)``."""
_MISMATCH = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\)")
"""Two branches of the model disagree on a length (StyleMelGAN's noise path makes a multiple
of 88 frames and adds it to the mel's): when one of them is the input's length, the other is
the length the model wants."""


def conv_widths(model: nn.Module) -> list[tuple[int, str]]:
    """``(in_channels, name)`` of every Conv1d / ConvTranspose1d in registration order, one per
    width; a TorchScript or exported model's from the weights of modules written as those. A
    conv named like an input conv (:data:`FIRST_NAMES`) comes first."""
    types, found = module_types(model), {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            width = module.in_channels
        elif types.get(name) in _WIDTH_TYPES:
            weight = getattr(module, "weight", None)
            if getattr(weight, "dim", lambda: 0)() != 3:
                continue
            width = weight.shape[1] if types[name] == "Conv1d" else weight.shape[0]
        else:
            continue
        found.setdefault(int(width), name)
    widths = [(w, n) for w, n in found.items() if w >= 1]
    return sorted(widths, key=lambda wn: not FIRST_NAMES.search(wn[1].rsplit(".", 1)[-1]))


def spectrogram_layer(model: nn.Module) -> str | None:
    """The type of the model's first layer with weights when it is a 2-D conv with one input
    channel (``Conv2d``, ``ConvTranspose2d``): it reads a spectrogram; else None."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            return type(module).__name__ if module.in_channels == 1 else None
        if any(True for _ in module.parameters(recurse=False)):
            return None
    return None


def longest_kernel(model: nn.Module) -> int:
    """The shortest input the model's own layers can take: a conv's kernel span less its
    padding, an STFT's or filter bank's ``n_fft`` / ``win_length`` / ``kernel_size``."""
    longest = 1
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
            span = module.dilation[-1] * (module.kernel_size[-1] - 1) + 1
            pad = module.padding[-1] if isinstance(module.padding, tuple) else 0
            need = span - 2 * pad if module.padding_mode == "zeros" else span
            longest = max(longest, need)
            continue
        for attr in ("n_fft", "win_length", "kernel_size", "filter_length"):
            value = getattr(module, attr, None)
            if isinstance(value, int) and not isinstance(value, bool):
                longest = max(longest, value)
    return longest if longest <= MAX_LENGTH else 1


def stride_unit(model: nn.Module) -> int:
    """The product of the downsampling strides along time (convs and pools); their lcm where
    the product exceeds :data:`MAX_UNIT` (parallel branches), 1 where that does too."""
    strides = []
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
            stride = module.stride[-1]
        elif isinstance(module, (nn.AvgPool1d, nn.MaxPool1d)):
            value = module.stride
            stride = value[-1] if isinstance(value, tuple) else value
        else:
            continue
        if isinstance(stride, int) and stride > 1:
            strides.append(stride)
    for unit in (math.prod(strides), math.lcm(*strides) if strides else 1):
        if unit <= MAX_UNIT:
            return unit
    return 1


def upsampling_unit(model: nn.Module) -> int:
    """The product of the transposed convs' strides along time (1 where it exceeds
    :data:`MAX_UNIT`): a model that grows a second path from a shorter one (StyleMelGAN's noise,
    ×88) makes lengths in multiples of it."""
    unit = math.prod(
        m.stride[-1] for m in model.modules() if isinstance(m, nn.modules.conv._ConvTransposeNd)
    )
    return unit if unit <= MAX_UNIT else 1


def round_up(length: int, unit: int) -> int:
    return -(-length // unit) * unit


def first_length(model: nn.Module) -> tuple[int, int, str | None]:
    """The inferred input's length, the multiple it keeps, and why when it is not
    :data:`DISCOVERY_FRAMES`: the longest kernel's span rounded up to the stride product."""
    kernel = longest_kernel(model)
    if kernel <= DISCOVERY_FRAMES:
        return DISCOVERY_FRAMES, 1, None
    unit = stride_unit(model)
    length = round_up(kernel, unit)
    why = f"length {length}: the longest kernel spans {kernel}" + (
        f", rounded up to the strides' product {unit}" if unit > 1 and length != kernel else ""
    )
    return length, unit, why


@dataclass(frozen=True)
class Candidate:
    """A shape to try, the multiple its length must keep, and why it is tried."""

    shape: tuple[int, ...]
    multiple: int = 1
    why: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        return ",".join(map(str, self.shape))


@dataclass
class ShapeSearch:
    """The candidates after a first guess, in order: what the last failure's message names
    (:meth:`refused`) first, then every conv's width and :data:`CANDIDATE_CHANNELS` at the
    current length, then longer lengths for the first widths."""

    model: nn.Module
    first: Candidate | None
    extra: list[int] = field(default_factory=list)
    tried: list[Candidate] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        widths = [w for w, _ in conv_widths(self.model)]
        self.unit = stride_unit(self.model)
        self.widths = list(dict.fromkeys([*widths, *self.extra, *CANDIDATE_CHANNELS]))
        base = self.first or Candidate((self.widths[0], DISCOVERY_FRAMES))
        self.length, self.multiple, self.why = base.shape[-1], base.multiple, base.why
        self.hinted: list[Candidate] = []
        self.queue: list[Candidate] = [self.first] if self.first else []
        self.queue += self._spectrograms() + self._by_widths()

    def _spectrograms(self) -> list[Candidate]:
        """For a model whose first layer reads a spectrogram (:func:`spectrogram_layer`): each
        mel height as ``(1, n_mels, T)`` (the layer's own input) and as ``(n_mels, T)`` (a
        model that adds the channel axis itself), before any other width."""
        layer = spectrogram_layer(self.model)
        if layer is None:
            return []
        found = []
        for shape_of in (lambda h: (1, h, self.length), lambda h: (h, self.length)):
            for height in MEL_HEIGHTS:
                why = (
                    f"height {height} mel bins: the first layer, a {layer} with 1 input "
                    f"channel, reads a spectrogram (B, 1, n_mels, T); {height} is a common "
                    "mel size, guessed"
                )
                found.append(Candidate(shape_of(height), self.multiple, (*self.why, why)))
        return found

    def _by_widths(self) -> list[Candidate]:
        """Every width at the current length; then the first three at the stride product's
        multiple, twice and four times the length."""
        here = [Candidate((w, self.length), self.multiple, self.why) for w in self.widths]
        longer = []
        if self.unit > 1 and self.length % self.unit:
            unit = math.lcm(self.multiple, self.unit)
            length = round_up(self.length, unit)
            why = (*self.why, f"length {length}: a multiple of the strides' product {self.unit}")
            longer += [Candidate((w, length), unit, why) for w in self.widths[:3]]
        for scale in (2, 4):
            length = round_up(scale * self.length, self.multiple)
            if length <= MAX_LENGTH:
                why = (*self.why, f"length {length}: {scale} times longer")
                longer += [Candidate((w, length), self.multiple, why) for w in self.widths[:3]]
        return here + longer

    def __iter__(self):
        while len(self.tried) < MAX_ATTEMPTS and (
            not self.tried or time.monotonic() - self.started < SEARCH_SECONDS
        ):
            seen = {c.shape for c in self.tried}
            pending = [c for c in self.hinted + self.queue if c.shape not in seen]
            if not pending:
                return
            candidate = pending[0]
            self.hinted = [c for c in self.hinted if c.shape != candidate.shape]
            self.tried.append(candidate)
            yield candidate

    @property
    def exhausted(self) -> str:
        """Why the search stopped, in words (for the refusal)."""
        if len(self.tried) >= MAX_ATTEMPTS:
            return f"; stopped after {MAX_ATTEMPTS} candidates"
        if time.monotonic() - self.started >= SEARCH_SECONDS:
            return f"; stopped after {SEARCH_SECONDS:g} s"
        return ""

    def refused(self, candidate: Candidate, message: str) -> None:
        """Read ``message`` (the model's error at ``candidate``) for the channels or length it
        wants; the candidate it makes is tried next, and a length rule holds for the rest.
        A spectrogram candidate's refusal (``(1, n_mels, T)``) hints nothing: the 2-D ones
        follow."""
        if len(candidate.shape) != 2:
            return
        channels, length = candidate.shape
        multiple, why = candidate.multiple, list(candidate.why)
        for pattern in _CHANNELS:
            if (found := pattern.search(message)) and 1 <= int(found.group(1)) <= 4096:
                said = int(found.group(1))
                if said != channels:
                    channels = said
                    why.append(f"{said} channels named in the model's error")
                # the width it names first at every length still to come
                self.queue.sort(key=lambda c: c.shape[0] != said)
                break
        if (found := _MULTIPLE.search(message)) and 1 < int(found.group(1)) <= MAX_UNIT:
            said = int(found.group(1))
            multiple = math.lcm(multiple, said)
            if length % multiple:
                length = round_up(length, multiple)
                why.append(f"length {length}: a multiple of {said}, as the model's error asks")
        sizes = [int(v) for v in found.groups()] if (found := _MISMATCH.search(message)) else []
        if length in sizes and 1 < (made := sum(sizes) - length) <= MAX_LENGTH:
            unit = upsampling_unit(self.model)  # the step the model makes lengths in, or made's
            multiple = math.lcm(multiple, unit if made % unit == 0 and unit > 1 else made)
            why.append(
                f"length {made}: the model made {made} frames where the input had {length} "
                f"(kept a multiple of {multiple})"
            )
            length = round_up(made, multiple)
        for pattern in _LONGER:
            if found := pattern.search(message):
                had, needed = longer_than(found.groups())
                unit = math.lcm(multiple, self.unit)
                longer = round_up(max(math.ceil(length * needed / had), length + 1), unit)
                if longer <= MAX_LENGTH:
                    multiple, length = unit, longer
                    why.append(
                        f"length {length}: the model's error asks for {needed} samples where it "
                        f"had {had}"
                    )
                break
        if _EXTRA_AXIS.search(message) and channels == 1:
            said = "one axis fewer: the model's 1-D conv got 4 axes, so it makes its own channels"
            self.hinted.insert(0, Candidate((length,), multiple, (*why, said)))
            return
        if (channels, length) == candidate.shape:
            return
        self.hinted.insert(0, Candidate((channels, length), multiple, tuple(why)))
        if (length, multiple) != (candidate.shape[1], candidate.multiple):
            self.length, self.multiple = length, multiple  # the rest at the length it asks
            self.why = tuple(w for w in why if w.startswith("length "))
            self.queue = self._by_widths()
            self.queue.sort(key=lambda c: c.shape[0] != channels)


def longer_than(groups: tuple[str, ...]) -> tuple[int, int]:
    """``(samples the signal had, samples it needed)`` from a :data:`_LONGER` match: ``(had,
    kernel)``, or a padding's ``(left, right, had)`` (reflection needs one more than it pads)."""
    if len(groups) == 3:
        return max(int(groups[2]), 1), max(int(groups[0]), int(groups[1])) + 1
    return max(int(groups[0]), 1), int(groups[1])
