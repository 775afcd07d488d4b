"""What a checkpoint may declare and hold, checked before the memory it asks for is spent.

A checkpoint comes from elsewhere: a file of a few megabytes can declare gigabytes. Every
check here reads only a file's size and its own directory or header, never its data:

- **zip archives** (``torch.save``, TorchScript, torch.export): the central directory is read
  (``zipfile.ZipFile.infolist``, nothing extracted). A compressed record is refused: torch never
  compresses a storage, so it was made by something else, and a deflated record is how a 2 MB
  file holds a 2 GiB storage (TorchScript and torch.export archives deflate their code and
  debug records, which are allowed; never their ``data/`` storages). The stored records'
  declared sizes may not add up to more than the file holds (a stored record is its own
  bytes), and all records' together not to more than the :class:`Budget`.
- **legacy ``torch.save`` pickles** and **safetensors** files keep their tensors' bytes raw in
  the file, and torch / safetensors refuse a tensor that claims more bytes than are there, so
  the file's size is what loading costs: it is held to the budget. A safetensors header (an
  8-byte length, then JSON) is read and checked against the file first: its length, and every
  tensor's byte range inside the data and as long as its shape and type say.

The :class:`Budget` is what the ``--arch`` module can use: :data:`ARCH_MULTIPLE` times the
bytes of its parameters and buffers (optimizer moments, averaged weights, a GAN's
discriminators travel in the same file) plus :data:`SLACK`, and never more than
:data:`~upsampcheck.bounds.MEMORY_SHARE` of the memory available. A format that carries its
own architecture (TorchScript, torch.export) is held to the memory share alone.

Tensors that load as weights only but cannot run in the model (:func:`check_tensors`): on the
meta device (no values), sparse or otherwise not strided, quantized, and dtypes the model's
weights cannot take (float8 storage formats, complex values for real weights).
"""

from __future__ import annotations

import json
import math
import pathlib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .. import bounds
from ..errors import UsageError
from ..paths import shown
from .state_dicts import shown_key

ARCH_MULTIPLE = 16
"""A checkpoint may hold this many times the bytes of the ``--arch`` module's state (Adam's two
moments and an EMA copy are 3x; a HiFi-GAN training checkpoint with both discriminators and
their optimizer state is about 18x the generator alone, inside the multiple plus the slack)."""
SLACK = 256 * 2**20
"""Bytes a checkpoint may hold beyond :data:`ARCH_MULTIPLE` (small models, pickled metadata)."""
SAFETENSORS_HEADER = 100 * 2**20
"""The longest safetensors header (the ``safetensors`` library's own limit)."""

FLOATS = {torch.float16, torch.bfloat16, torch.float32, torch.float64}
COMPLEX = {torch.complex64, torch.complex128}
INTEGERS = {torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64}
SAFETENSORS_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}  # fmt: skip


def amount(n_bytes: float) -> str:
    """Bytes in words: ``512 bytes``, ``3.4 KiB``, ``12.0 MiB``, ``2.0 GiB``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def state_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers (its ``state_dict``)."""
    return sum(
        t.numel() * t.element_size()
        for t in module.state_dict().values()
        if isinstance(t, torch.Tensor)
    )


@dataclass(frozen=True)
class Budget:
    """The most bytes one checkpoint may declare: from the ``--arch`` module's own state
    (``arch_bytes``, None when there is no architecture to size it by) and from the memory
    available (``available``, None where it cannot be read)."""

    arch: str | None = None
    arch_bytes: int | None = None
    available: int | None = None

    @classmethod
    def for_arch(cls, arch: str | None, module: torch.nn.Module | None) -> Budget:
        """The budget for a checkpoint loaded into ``module`` (built from ``arch``), or for
        one that carries its own architecture (``module`` None), with the memory available
        now."""
        size = state_bytes(module) if module is not None else None
        return cls(arch, size, bounds.available_memory())

    def check(self, path: pathlib.Path, declared: int, what: str = "declares") -> None:
        """Refuse ``path`` when its ``declared`` bytes exceed either bound (one line, exit 2)."""
        name = shown(path)
        if self.arch_bytes is not None:
            limit = ARCH_MULTIPLE * self.arch_bytes + SLACK
            if declared > limit:
                raise UsageError(
                    f"refusing {name}: it {what} {amount(declared)} of data, more than"
                    f" --arch {self.arch} can use (its weights take {amount(self.arch_bytes)};"
                    f" a checkpoint may hold {ARCH_MULTIPLE}x that plus {amount(SLACK)},"
                    f" {amount(limit)}): check that it is the checkpoint of this architecture"
                )
        if self.available is not None and declared > bounds.MEMORY_SHARE * self.available:
            raise UsageError(
                f"refusing {name}: it {what} {amount(declared)} of data and"
                f" {amount(self.available)} of memory is available"
            )


def check_zip(
    path: pathlib.Path, infos: list[zipfile.ZipInfo], budget: Budget, code: bool = False
) -> None:
    """A zip checkpoint's directory: stored records within the file, and within the budget.

    ``code``: a TorchScript or torch.export archive, whose code and debug records torch does
    deflate; its tensor storages (``<root>/data/``) are still stored, and every record's
    declared size counts against the budget.
    """
    name = shown(path)
    for info in infos:
        tensor = info.filename.partition("/")[2].startswith("data/")
        if info.compress_type != zipfile.ZIP_STORED and (tensor or not code):
            raise UsageError(
                f"refusing {name}: its record {shown_key(info.filename)} is compressed"
                f" ({amount(info.compress_size)} that expand to {amount(info.file_size)});"
                " torch.save never compresses, so something else made or changed this file"
            )
    declared = sum(info.file_size for info in infos)
    stored = sum(i.file_size for i in infos if i.compress_type == zipfile.ZIP_STORED)
    size = path.stat().st_size
    if stored > size:
        raise UsageError(
            f"refusing {name}: its archive directory declares {amount(stored)} of records"
            f" in a file of {amount(size)}: forged or truncated (re-save or re-download it)"
        )
    budget.check(path, declared)


def check_safetensors(path: pathlib.Path, size: int, budget: Budget) -> None:
    """A safetensors file's header against its size, then its size against the budget.

    The header must fit in the file and in :data:`SAFETENSORS_HEADER`, be a JSON object of
    entries ``{"dtype", "shape", "data_offsets"}`` (and an optional ``__metadata__``), and each
    entry's byte range must lie inside the data and be as long as its shape and type say.
    """
    name = shown(path)
    with path.open("rb") as fh:
        length = int.from_bytes(fh.read(8), "little")
        if length > min(SAFETENSORS_HEADER, size - 8):
            raise UsageError(
                f"refusing {name}: its safetensors header claims {amount(length)} in a file of"
                f" {amount(size)} (at most {amount(SAFETENSORS_HEADER)}): forged or truncated"
            )
        raw = fh.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"cannot read {name}: its safetensors header is not JSON") from exc
    if not isinstance(header, dict):
        raise UsageError(f"cannot read {name}: its safetensors header is not a JSON object")
    data = size - 8 - length
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        problem = _safetensors_entry(entry, data)
        if problem:
            raise UsageError(f"refusing {name}: tensor {shown_key(key)} {problem}")
    budget.check(path, size, "holds")


def _safetensors_entry(entry: object, data: int) -> str | None:
    """What is wrong with one safetensors header entry, or None."""
    if not isinstance(entry, dict):
        return "has no dtype, shape and data_offsets"
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    ints = (
        isinstance(shape, list)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(v) is int and v >= 0 for v in [*shape, *offsets])
    )
    if not ints:
        return "has a malformed shape or data_offsets"
    start, end = offsets
    if not start <= end <= data:
        return f"claims bytes {start} to {end} of {data}: forged or truncated"
    size = SAFETENSORS_SIZES.get(dtype) if isinstance(dtype, str) else None
    if size is not None and math.prod(shape) * size != end - start:
        return f"claims shape {shape} of {dtype} in {end - start} bytes"
    return None


def check_tensors(
    path: pathlib.Path, state: Mapping[str, object], ref: Mapping[str, torch.Tensor]
) -> None:
    """Refuse a state dict with a tensor the model cannot run, naming the (escaped) key.

    ``ref`` is the architecture's own state dict: a tensor must be strided, hold values (not
    on the meta device), not be quantized or nested, and have a dtype the matching weight can
    take without losing meaning: a real float type (float16, bfloat16, float32, float64) for
    a float weight, a complex one for a complex weight, an integer or bool for an integer
    buffer. float8 types are storage formats the CPU cannot compute in; complex values in a
    real weight would lose their imaginary part.
    """
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        problem = _unrunnable(value, ref.get(key))
        if problem:
            raise UsageError(
                f"cannot use {shown(path)}: tensor {shown_key(key)} {problem}; re-save it"
                " as a plain dense tensor of the model's dtype"
            )


def _unrunnable(value: torch.Tensor, ref: torch.Tensor | None) -> str | None:
    """Why ``value`` cannot stand for ``ref`` in the model, or None."""
    if value.is_meta:
        return "is on the meta device (a shape with no values)"
    if value.layout != torch.strided:
        return f"has layout {value.layout} (sparse or blocked), not a dense tensor"
    if value.is_quantized:
        return f"is quantized ({value.dtype})"
    if value.is_nested:
        return "is a nested tensor"
    if ref is None:
        return None
    allowed = FLOATS if ref.is_floating_point() else COMPLEX if ref.is_complex() else INTEGERS
    if value.dtype not in allowed:
        return f"is {value.dtype}, which the model's {ref.dtype} weight cannot take"
    return None
