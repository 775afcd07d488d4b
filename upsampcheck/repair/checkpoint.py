"""Write a repaired checkpoint in the input's own layout, safely.

The layout: the file is read again exactly as ``upsampcheck model`` reads it
(:func:`~upsampcheck.subjects.loading.load_model` with ``keep_checkpoint``), which keeps what
the file held and, for each of the module's state-dict keys, the very tensor object it was
loaded from, wherever it sits (under ``state_dict``, a prefix such as ``generator.``, the other
weight-norm layout). Only the tensors the repair changed are replaced there, in place and in
their own dtype; every other entry (optimizer state, step, other networks) is left as it was.
So the keys are the file's own, and a weight-norm layer's ``g`` and ``v`` (either layout) are
the module's corrected ones.

The rules, as for report folders: the target must be new (an existing file, the input itself
under any name, a link: refused with exit 2 before any work), its folder must exist and be
writable, and the file appears whole or not at all: written to a temporary file beside it,
flushed, then linked to its name (which fails rather than replace a file that appeared in
the meantime) and the temporary name removed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping, MutableSequence
from pathlib import Path

import torch

from ..errors import UsageError
from ..paths import check_writable_parent, shown

WRITABLE = ("state_dict", "lightning", "safetensors")
"""Checkpoint sources (``LoadedModel.source``) the repair can write back."""


def check_target(target: Path, source: Path | None) -> None:
    """Refuse a ``--write`` target that exists (the input itself above all) or is a link, or
    whose folder is missing or not writable: one-line :class:`UsageError`."""
    name = shown(target)
    if target.name in ("", ".", ".."):
        raise UsageError(f"--write {name}: name a new file for the repaired checkpoint")
    if os.path.lexists(target):
        if source is not None and os.path.exists(target) and os.path.exists(source):
            a, b = os.stat(target), os.stat(source)
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                raise UsageError(
                    f"--write {name}: is the input checkpoint; repair never writes over its "
                    "input: give a new file name"
                )
        if target.is_symlink():
            raise UsageError(f"--write {name}: is a symbolic link; give a new file name")
        raise UsageError(f"--write {name}: exists; repair never overwrites a file: give a new name")
    parent = Path(os.path.abspath(target)).parent
    if not parent.is_dir():
        raise UsageError(f"--write {name}: the folder {shown(parent)} does not exist")
    check_writable_parent(target, "--write")


def replace_tensors(obj: object, new: dict[int, torch.Tensor]) -> int:
    """Replace, in place, every tensor of ``obj`` (nested mappings and lists) whose ``id`` is a
    key of ``new``; returns how many were replaced."""
    count = 0
    stack = [obj]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, MutableMapping):
            entries = list(item.items())
        elif isinstance(item, MutableSequence):
            entries = list(enumerate(item))
        else:
            continue
        for key, value in entries:
            if isinstance(value, torch.Tensor):
                if id(value) in new:
                    item[key] = new[id(value)]
                    count += 1
            else:
                stack.append(value)
    return count


def repaired_checkpoint(loaded, module: torch.nn.Module) -> tuple[object, list[str]]:
    """The checkpoint ``loaded`` came from (kept by ``load_model(..., keep_checkpoint=True)``)
    with the tensors that differ in ``module``'s state dict replaced, each in its own dtype;
    and notes (how many tensors, any rounding to a narrower dtype)."""
    if loaded.checkpoint is None or loaded.tensors is None:
        raise UsageError(
            f"cannot write a {loaded.source} checkpoint back: repair writes state dicts "
            "(plain, Lightning, safetensors); save the module's state_dict() and repair that"
        )
    state = module.state_dict()
    new, notes, narrow = {}, [], set()
    for key, old in loaded.tensors.items():
        value = state[key].detach().cpu()
        if torch.equal(value, old.to(value.dtype)):
            continue
        new[id(old)] = value.to(old.dtype).clone()
        if old.dtype != value.dtype:
            narrow.add(str(old.dtype).replace("torch.", ""))
    found = replace_tensors(loaded.checkpoint, new)
    if found < len(new):
        raise RuntimeError(f"repair: found {found} of the {len(new)} changed tensors")
    notes.append(f"replaced {len(new)} tensor{'s' * (len(new) != 1)} of the checkpoint")
    if narrow:
        notes.append(
            f"the corrected weights were rounded to the checkpoint's {', '.join(sorted(narrow))}:"
            " the phase sums are tied to that precision"
        )
    return loaded.checkpoint, notes


def write_checkpoint(obj: object, target: Path, source: str) -> None:
    """Write ``obj`` to the new file ``target`` whole or not at all (safetensors when the input
    was, else ``torch.save``)."""
    parent = Path(os.path.abspath(target)).parent
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name[:100]}.", suffix=".tmp")
    try:
        os.close(fd)
        if source == "safetensors":
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in obj.items()}, tmp)
        else:
            torch.save(obj, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise UsageError(
                f"--write {shown(target)}: appeared while repairing; not replaced"
            ) from None
        except OSError:  # no hard links here: replace, the target checked absent just now
            if os.path.lexists(target):
                raise UsageError(f"--write {shown(target)}: exists; not replaced") from None
            os.replace(tmp, target)
    except OSError as exc:
        raise UsageError(f"--write {shown(target)}: cannot write: {exc.strerror or exc}") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
