"""Reading checkpoint files by their format: the format named from the bytes (:func:`sniff`),
``torch.load`` weights-only (a full pickle only when trusted, :func:`torch_load`), safetensors.
Every failure is a one-line :class:`~upsampcheck.errors.UsageError` (:func:`unreadable`), and
torch's warnings never reach stderr. What the file declares is checked before any of this by
:mod:`.vetting`; what the loaded object holds is found by :mod:`.loading`.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import re
import sys
import warnings
import zipfile

import torch

from upsampcheck.errors import UsageError
from upsampcheck.paths import check_input_file, shown

from .state_dicts import safe_types

TRUST_HINT = "pass --trust-checkpoint only if you trust its source"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def oneline(exc: BaseException, limit: int = 200) -> str:
    """``exc`` as one short line: ANSI codes and newlines removed, any other control character
    escaped (a key quoted in torch's message may carry some), truncated to ``limit``."""
    text = " ".join(_ANSI.sub("", str(exc)).split())
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sniff(path: pathlib.Path) -> tuple[str, list[zipfile.ZipInfo]]:
    """Name the format of ``path`` from its bytes (:mod:`.loading` lists them); for a zip
    archive, also its directory (read, nothing extracted), for :func:`.vetting.check_zip`."""
    if path.is_dir():
        raise UsageError(
            f"checkpoint {shown(path)} is a directory: pass the checkpoint file inside it"
        )
    check_input_file(path, "checkpoint")
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise UsageError(f"cannot read {shown(path)}: {oneline(exc)}") from exc
    if size == 0:
        raise UsageError(f"checkpoint {shown(path)} is empty: re-save or re-download it")
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise UsageError(
                f"cannot read {shown(path)}: truncated or corrupt zip archive"
                f" ({oneline(exc)}); re-save or re-download it"
            ) from exc
        names = [info.filename for info in infos]
        rel = {n.split("/", 1)[1] for n in names if "/" in n}  # paths below the root folder
        if "constants.pkl" in rel or any(r.startswith("code/") for r in rel):
            return "torchscript", infos
        if "archive_format" in rel or "serialized_exported_program.json" in names:
            return "torch_export", infos
        if "data.pkl" in rel:
            return "torch_zip", infos
        raise UsageError(f"cannot read {shown(path)}: a zip archive but not a PyTorch checkpoint")
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") >= 2:
        return "safetensors", []  # a header longer than the file is refused by its check
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle", []
    return "unknown", []


def torch_load(path: pathlib.Path, kind: str, trusted: bool) -> object:
    """``torch.load`` with ``weights_only=True``; a full pickle needs ``trusted``."""
    try:
        return torch_load_file(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        if kind == "unknown":
            raise UsageError(
                f"cannot read {shown(path)}: not a PyTorch checkpoint (expected a state dict,"
                " safetensors, TorchScript or torch.export file)"
            ) from exc
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        needs = f"it references {found.group(1)}" if found else "not readable as weights only"
        if not trusted:
            raise UsageError(
                f"refusing to load {shown(path)}: it is a full pickle ({needs}), which can run"
                f" arbitrary code when loaded; {TRUST_HINT}, or re-save it as a state dict"
            ) from exc
    except Exception as exc:
        raise unreadable(path, exc) from exc
    try:  # trusted full pickle
        return torch_load_file(path, weights_only=False)
    except Exception as exc:
        raise unreadable(path, exc) from exc


def unreadable(path: pathlib.Path, exc: BaseException) -> UsageError:
    reason = "unexpected end of file, truncated?" if isinstance(exc, EOFError) else oneline(exc)
    return UsageError(f"cannot read {shown(path)}: {reason} (re-save or re-download it)")


def torch_load_file(path: pathlib.Path, weights_only: bool) -> object:
    # An open file, not a path: torch.load hands any path ending in .safetensors to safetensors.
    with warnings.catch_warnings(), path.open("rb") as f:
        warnings.simplefilter("ignore")
        if not weights_only:  # a trusted pickle may name classes of the current folder
            cwd = os.getcwd()
            if cwd not in sys.path:
                sys.path.insert(0, cwd)
            return torch.load(f, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(safe_types()):
            return torch.load(f, map_location="cpu", weights_only=True)


def read_safetensors(path: pathlib.Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise UsageError(f"{shown(path)} is a safetensors file: pip install safetensors") from exc
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise unreadable(path, exc) from exc
