"""Checkpoint formats and the trust policy (docs/method.md).

Checkpoints are untrusted by default. Plain state dicts (bare, Lightning-style or nested under
``model``/``state_dict``...) and ``.safetensors`` files hold only tensors: they load with
``torch.load(weights_only=True)`` / ``safetensors`` into the module built by ``--arch`` with
``strict=True`` (persistent buffers its constructor computed and the file lacks, such as a
PQMF's filter banks, are taken from the build first: :func:`.fitting.constructor_buffers`).
Formats that can run code on load (full pickles, TorchScript, torch.export ``.pt2`` archives,
which also unpickle) are refused unless ``trust_checkpoint=True``: nothing is ever unpickled with
``weights_only=False`` without it.

The format is detected from the file's content, never its name:

- zip archive with ``<root>/code/`` or ``<root>/constants.pkl``: TorchScript
- zip archive with ``<root>/archive_format`` (or an older ``serialized_exported_program.json``):
  torch.export
- zip archive with ``<root>/data.pkl``: ``torch.save`` (state dict, or a full pickle)
- 8-byte little-endian header length, then ``{``: safetensors
- pickle protocol opcode (``0x80``, protocol 2-5): legacy ``torch.save`` or a raw pickle

Anything else is refused before ``torch.load`` sees it. What a file declares is checked
before it is loaded (:mod:`.vetting`: a zip archive's directory, a safetensors header, a
size against what the ``--arch`` module can use), key handling is linear in the keys' size
(:mod:`.state_dicts`, :func:`.fitting.align_prefix`), and a tensor the model cannot run is
refused by its key (:func:`.vetting.check_tensors`). torch's warnings never reach stderr, and
keys and paths in messages are escaped (:func:`.state_dicts.shown_key`,
:func:`~upsampcheck.paths.shown`).
"""

from __future__ import annotations

import importlib
import os
import pathlib
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from upsampcheck.errors import UsageError
from upsampcheck.paths import shown

from .fitting import align_prefix, constructor_buffers, unwrap
from .readers import (
    TRUST_HINT,
    oneline,
    read_safetensors,
    sniff,
    torch_load,
    unreadable,
)
from .state_dicts import (
    convert_weight_norm,
    select_weights,
    shown_key,
)
from .vetting import Budget, check_safetensors, check_tensors, check_zip

__all__ = ["LoadedModel", "build_arch", "load_model"]


@dataclass
class LoadedModel:
    """A model ready for probing.

    Attributes:
        module: the model, in ``eval()`` mode where the format allows it.
        source: how it was obtained: ``"arch"`` (fresh init), ``"state_dict"``, ``"lightning"``,
            ``"safetensors"``, ``"torchscript"``, ``"torch_export"`` or ``"pickled_module"``.
        example_inputs: positional example inputs stored in a torch.export archive, else None.
        notes: human-readable remarks on what loading did (prefixes stripped, keys used...).
        trained: the weights are not the architecture's seeded initialisation (a loaded
            state dict that differs from it, or a module saved whole).
    """

    module: torch.nn.Module
    source: str
    example_inputs: tuple[torch.Tensor, ...] | None = None
    notes: list[str] = field(default_factory=list)
    trained: bool = True
    checkpoint: object = None
    """With ``keep_checkpoint``: the object the file held (tensors and plain values), else None."""
    tensors: dict | None = None
    """With ``keep_checkpoint``: the module's state-dict keys -> the very tensor objects of
    :attr:`checkpoint` they were loaded from (``upsampcheck repair`` writes them back in place,
    in the checkpoint's own layout)."""


def build_arch(spec: str, kwargs: dict | None = None) -> torch.nn.Module:
    """Build a module from ``"MODULE:CALLABLE"``, calling ``CALLABLE(**kwargs)``.

    ``MODULE`` is imported from the current directory or ``PYTHONPATH`` (the current directory
    is put on ``sys.path`` if missing); ``CALLABLE`` may be dotted (``"pkg.mod:Class.make"``).
    Any failure (bad spec, import error, missing attribute, the callable raising, a result that
    is not an ``nn.Module``) raises :class:`UsageError` with a one-line message.
    """
    mod_name, sep, attr = spec.partition(":")
    if not (sep and _dotted(mod_name) and _dotted(attr)):
        raise UsageError(
            f"bad --arch {spec!r}: expected MODULE:CALLABLE, "
            "e.g. torchaudio.models:conv_tasnet_base"
        )
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise UsageError(f"--arch {spec}: keyword arguments must be a table/dict, not {kwargs!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        obj = importlib.import_module(mod_name)
    except Exception as exc:
        raise UsageError(f"--arch {spec}: cannot import {mod_name!r}: {oneline(exc)}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"--arch {spec}: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"--arch {spec}: {attr!r} is not callable")
    try:
        module = obj(**(kwargs or {}))
    except Exception as exc:
        raise UsageError(f"--arch {spec}: calling {attr}() failed: {oneline(exc)}") from exc
    if not isinstance(module, torch.nn.Module):
        raise UsageError(f"--arch {spec} returned {type(module).__name__}, not a torch.nn.Module")
    return module


def _dotted(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def load_model(
    ckpt: pathlib.Path | None,
    arch: str | None = None,
    arch_kwargs: dict | None = None,
    trust_checkpoint: bool = False,
    seed: int = 0,
    weights: str | None = None,
    keep_checkpoint: bool = False,
) -> LoadedModel:
    """Load ``ckpt`` (any supported format) or, without one, build ``arch`` freshly initialised.

    ``arch`` is built under ``torch.manual_seed(seed)`` (the global RNG state is restored
    afterwards) and is required for weights-only formats. ``weights`` picks a sub-dict or key
    prefix of a checkpoint that holds several (EMA weights; :mod:`.state_dicts`). Every
    failure, including an untrusted checkpoint that could run code, raises
    :class:`UsageError` with a one-line message. ``keep_checkpoint`` keeps what the file held
    and where each of the module's tensors came from (:attr:`LoadedModel.checkpoint`).
    """
    loaded = _load_model(ckpt, arch, arch_kwargs, trust_checkpoint, seed, weights)
    if not keep_checkpoint:
        loaded.checkpoint = loaded.tensors = None
    return loaded


def _load_model(
    ckpt: pathlib.Path | None,
    arch: str | None,
    arch_kwargs: dict | None,
    trust_checkpoint: bool,
    seed: int,
    weights: str | None,
) -> LoadedModel:
    if ckpt is None:
        if arch is None:
            raise UsageError("nothing to load: give a checkpoint, --arch MODULE:CALLABLE, or both")
        return LoadedModel(evaluated(_build_seeded(arch, arch_kwargs, seed)), "arch", trained=False)
    path = pathlib.Path(ckpt)
    kind, infos = sniff(path)
    with warnings.catch_warnings():  # torch's warnings on odd tensors never reach stderr
        warnings.simplefilter("ignore")
        if kind in ("torchscript", "torch_export"):
            if trust_checkpoint:
                check_zip(path, infos, Budget.for_arch(None, None), code=True)
            return _load_code_archive(path, kind, arch, trust_checkpoint)
        if kind == "unknown":
            raise UsageError(
                f"cannot read {shown(path)}: not a PyTorch checkpoint (expected a state dict,"
                " safetensors, TorchScript or torch.export file)"
            )
        module = _build_seeded(arch, arch_kwargs, seed) if arch is not None else None
        budget = Budget.for_arch(arch, module)
        if kind == "safetensors":
            check_safetensors(path, path.stat().st_size, budget)
            obj, source = read_safetensors(path), "safetensors"
            state, notes = select_weights(obj, weights, shown(path)) if weights else (obj, [])
            return _kept(obj, _load_state_dict(path, state, source, arch, module, notes))
        if kind == "torch_zip":
            check_zip(path, infos, budget)
        else:  # a legacy pickle keeps its storages raw after it: its size is what it costs
            budget.check(path, path.stat().st_size, "holds")
        obj = torch_load(path, kind, trust_checkpoint)
        if isinstance(obj, torch.nn.Module):
            return _code_module(evaluated(obj), "pickled_module", arch)
        if weights:
            state, notes = select_weights(obj, weights, shown(path))
            return _kept(obj, _load_state_dict(path, state, "state_dict", arch, module, notes))
        ref = module.state_dict() if module is not None else None
        state, source, notes = unwrap(path, obj, ref, constructor_buffers(module))
        if isinstance(state, torch.nn.Module):  # trusted pickle of {"model": <nn.Module>, ...}
            return _code_module(evaluated(state), "pickled_module", arch, notes)
        return _kept(obj, _load_state_dict(path, state, source, arch, module, notes))


def _kept(obj: object, loaded: LoadedModel) -> LoadedModel:
    loaded.checkpoint = obj
    return loaded


def evaluated(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` after ``module.eval()``, called for its effect: a project's ``eval()`` (or
    ``train()``) may return None or anything else, the module is what is kept."""
    module.eval()
    return module


def _build_seeded(arch: str, kwargs: dict | None, seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_arch(arch, kwargs)


def _load_code_archive(
    path: pathlib.Path, kind: str, arch: str | None, trusted: bool
) -> LoadedModel:
    if not trusted:
        what = {
            "torchscript": "a TorchScript archive, whose code runs when it is loaded and called",
            "torch_export": "a torch.export archive, which is unpickled on load and can run code",
        }[kind]
        raise UsageError(f"refusing to load {shown(path)}: it is {what}; {TRUST_HINT}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "torchscript":
                return _code_module(
                    evaluated(torch.jit.load(str(path), map_location="cpu")), kind, arch
                )
            program = torch.export.load(path)
            module = program.module()
    except Exception as exc:
        raise unreadable(path, exc) from exc
    loaded = _code_module(module, kind, arch)
    try:
        module.eval()
    except NotImplementedError:  # exported graphs keep the mode they were exported in
        loaded.notes.append("exported graph keeps the train/eval mode it was exported in")
    args, kwargs = program.example_inputs or ((), {})
    if args and not kwargs and all(isinstance(a, torch.Tensor) for a in args):
        loaded.example_inputs = tuple(args)
    return loaded


def _code_module(
    module: torch.nn.Module, source: str, arch: str | None, notes: list[str] | None = None
) -> LoadedModel:
    notes = list(notes or [])
    if arch is not None:
        notes.append(f"ignored --arch {arch}: the checkpoint carries its own architecture")
    return LoadedModel(module, source, None, notes)


def _load_state_dict(
    path: pathlib.Path,
    state: dict,
    source: str,
    arch: str | None,
    module: torch.nn.Module | None,
    notes: list[str] | None = None,
) -> LoadedModel:
    """Load ``state`` strictly into ``module`` (built from ``arch``), after aligning key
    prefixes and checking that every tensor can run in it (:func:`.vetting.check_tensors`).
    Keys in messages are escaped and cut short (:func:`.state_dicts.shown_key`)."""
    if arch is None or module is None:
        raise UsageError(
            f"{shown(path)} holds weights only ({len(state)} tensors), no architecture: pass"
            " --arch MODULE:CALLABLE (e.g. torchaudio.models:conv_tasnet_base) to build the"
            " model"
        )
    ref = module.state_dict()
    built = constructor_buffers(module)
    state, converted = convert_weight_norm(state, set(ref))
    try:
        state, stripped = align_prefix(state, set(ref), built)
    except UsageError as exc:
        raise UsageError(f"{shown(path)}: {exc}") from None
    check_tensors(path, state, ref)
    stripped = converted + stripped
    kept = sorted((ref.keys() - state.keys()) & built)
    if kept:  # filter banks and windows the constructor computes: the built ones are used
        state = {**state, **{key: ref[key] for key in kept}}
        names = ", ".join(shown_key(k) for k in kept[:6]) + (", ..." if len(kept) > 6 else "")
        stripped.append(
            f"kept {len(kept)} buffer{'s' * (len(kept) > 1)} from --arch's constructor (absent"
            f" from the checkpoint): {names}"
        )
    missing = [shown_key(k) for k in sorted(ref.keys() - state.keys())]
    unexpected = sorted(state.keys() - ref.keys())
    unexpected = [shown_key(k) for k in unexpected[:3]] + unexpected[3:]
    shapes = [
        f"{shown_key(k)} {tuple(state[k].shape)} vs {tuple(ref[k].shape)}"
        for k in sorted(ref.keys() & state.keys())
        if isinstance(state[k], torch.Tensor) and state[k].shape != ref[k].shape
    ]
    problems = [
        f"{len(items)} {label} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        )
        if items
    ]
    hint = "give the --arch (and --arch-kwargs) the checkpoint was saved from"
    if problems:
        raise UsageError(f"{shown(path)} does not fit --arch {arch}: {'; '.join(problems)}; {hint}")
    check_tensors(path, state, ref)
    trained = any(
        isinstance(value, torch.Tensor) and not torch.equal(value.to(ref[key].dtype), ref[key])
        for key, value in state.items()
    )
    try:
        module.load_state_dict(state, strict=True)
    except Exception as exc:
        raise UsageError(
            f"{shown(path)} does not fit --arch {arch}: {oneline(exc)}; {hint}"
        ) from exc
    notes = list(notes or []) + stripped
    loaded = LoadedModel(evaluated(module), source, None, notes, trained=trained)
    loaded.tensors = {key: state[key] for key in state.keys() - set(kept)}
    return loaded
