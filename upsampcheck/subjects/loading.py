"""Checkpoint formats and the trust policy (docs/method.md).

Checkpoints are untrusted by default. Plain state dicts (bare, Lightning-style or nested under
``model``/``state_dict``...) and ``.safetensors`` files hold only tensors: they load with
``torch.load(weights_only=True)`` / ``safetensors`` into the module built by ``--arch`` with
``strict=True`` (persistent buffers its constructor computed and the file lacks, such as a
PQMF's filter banks, are taken from the build first: :func:`constructor_buffers`). Formats
that can run code on load (full pickles, TorchScript, torch.export ``.pt2`` archives, which
also unpickle) are refused unless ``trust_checkpoint=True``: nothing is ever unpickled with
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
(:mod:`.state_dicts`, :func:`_align_prefix`), and a tensor the model cannot run is refused by
its key (:func:`.vetting.check_tensors`). torch's warnings never reach stderr, and keys and
paths in messages are escaped (:func:`.state_dicts.shown_key`, :func:`~upsampcheck.paths.shown`).
"""

from __future__ import annotations

import importlib
import itertools
import os
import pathlib
import sys
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from operator import methodcaller

import torch

from upsampcheck.errors import UsageError
from upsampcheck.paths import shown

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
    ema_prefixes,
    is_ema,
    is_state_dict,
    prefix_groups,
    select_weights,
    shown_key,
    state_candidates,
)
from .vetting import Budget, check_safetensors, check_tensors, check_zip

__all__ = ["LoadedModel", "build_arch", "load_model"]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "generator")
_USUAL_PREFIXES = ("model.", "module.", "net.", "generator.", "model_ema.", "ema.")
_LIGHTNING_KEYS = ("pytorch-lightning_version", "global_step", "epoch", "optimizer_states")


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
) -> LoadedModel:
    """Load ``ckpt`` (any supported format) or, without one, build ``arch`` freshly initialised.

    ``arch`` is built under ``torch.manual_seed(seed)`` (the global RNG state is restored
    afterwards) and is required for weights-only formats. ``weights`` picks a sub-dict or key
    prefix of a checkpoint that holds several (EMA weights; :mod:`.state_dicts`). Every
    failure, including an untrusted checkpoint that could run code, raises
    :class:`UsageError` with a one-line message.
    """
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
            return _load_state_dict(path, state, source, arch, module, notes)
        if kind == "torch_zip":
            check_zip(path, infos, budget)
        else:  # a legacy pickle keeps its storages raw after it: its size is what it costs
            budget.check(path, path.stat().st_size, "holds")
        obj = torch_load(path, kind, trust_checkpoint)
        if isinstance(obj, torch.nn.Module):
            return _code_module(evaluated(obj), "pickled_module", arch)
        if weights:
            state, notes = select_weights(obj, weights, shown(path))
            return _load_state_dict(path, state, "state_dict", arch, module, notes)
        ref = module.state_dict() if module is not None else None
        state, source, notes = _unwrap(path, obj, ref, constructor_buffers(module))
        if isinstance(state, torch.nn.Module):  # trusted pickle of {"model": <nn.Module>, ...}
            return _code_module(evaluated(state), "pickled_module", arch, notes)
        return _load_state_dict(path, state, source, arch, module, notes)


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


def _a(noun: str) -> str:
    """``noun`` with its indefinite article ("an OrderedDict", "a list")."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _unwrap(
    path: pathlib.Path, obj: object, ref: dict | None = None, optional: Collection[str] = ()
) -> tuple[dict | torch.nn.Module, str, list[str]]:
    """Find the state dict (or, trusted, the module) in a checkpoint: ``(state, source, notes)``.

    Of several state dicts side by side (``{"model_g": ..., "model_d": ...}``), the only one
    that fits the ``--arch`` module's state dict ``ref`` (:func:`_fits_arch`) is chosen, with a
    note; when none or several fit, ``--weights`` must say which."""
    top, trail, chose = obj, [], []
    plain = is_state_dict(obj)  # once per level: a state dict may hold 200,000 keys
    while not plain and isinstance(obj, Mapping) and len(trail) < 3:
        key = next(
            (k for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping | torch.nn.Module)), None
        )
        if key is None:
            break
        trail.append(key)
        obj = obj[key]
        if isinstance(obj, torch.nn.Module):
            return obj, "pickled_module", [f"used the module in checkpoint{_fmt(trail)}"]
        plain = is_state_dict(obj)
    if not plain and isinstance(obj, Mapping):
        found = state_candidates(obj)
        if len(found) == 1:  # e.g. {"model_ema": {...}, "step": 10}: the only weights there are
            trail.append(next(iter(found)))
            obj, plain = found[trail[-1]], True
        elif found:
            fitting = [k for k, sub in found.items() if _fits_arch(sub, ref, optional)]
            if len(fitting) != 1:
                which = f"{_listed(fitting)}, all fitting --arch" if fitting else _listed(found)
                raise UsageError(
                    f"{shown(path)} holds several state dicts ({which}); "
                    "choose one with --weights KEY"
                )
            trail.append(fitting[0])
            obj, plain = found[fitting[0]], True
            others = _listed([k for k in found if k != fitting[0]])
            chose.append(
                f"chose {shown_key(fitting[0], quoted=True)}: the only state dict in the "
                f"checkpoint that fits --arch (also there: {others}); pick with --weights KEY"
            )
    if not plain:
        keys = _listed(obj, 5) if isinstance(obj, Mapping) else ""
        found = f"a dict with keys {keys}" if keys else _a(type(obj).__name__)
        raise UsageError(f"{shown(path)} holds {found}, not a state dict of tensors or a module")
    lightning = trail == ["state_dict"] and any(k in top for k in _LIGHTNING_KEYS)
    notes = [f"using checkpoint{_fmt(trail)}"] if trail else []
    notes += chose + ema_notes(top, trail, obj)
    state = obj if isinstance(obj, dict) else dict(obj)  # keep an OrderedDict's _metadata
    return state, "lightning" if lightning else "state_dict", notes


def _fits_arch(state: Mapping, ref: dict | None, optional: Collection[str]) -> bool:
    """Whether ``state`` loads into the module whose state dict is ``ref``: after weight-norm
    conversion and prefix alignment, its keys are ``ref``'s (less any of the ``optional``
    constructor buffers) with the same shapes. A state dict with several fitting prefixes
    fits."""
    if ref is None or not isinstance(state, dict):
        return False
    expected = set(ref)
    converted, _ = convert_weight_norm(state, expected)
    try:
        aligned, _ = _align_prefix(converted, expected, set(optional))
    except UsageError:
        return True  # several parts of it fit
    return _covers(aligned.keys(), expected, optional) and all(
        not isinstance(value, torch.Tensor) or value.shape == ref[key].shape
        for key, value in aligned.items()
    )


def _covers(keys: Collection[str], expected: set[str], optional: Collection[str]) -> bool:
    """``keys`` are ``expected`` less some of the ``optional`` ones."""
    return keys <= expected and (expected - keys) <= set(optional)


def constructor_buffers(module: torch.nn.Module | None) -> set[str]:
    """State-dict keys of the buffers ``module``'s constructor made that a checkpoint may leave
    out: persistent buffers (filter banks, windows: a PQMF's ``analysis_filter``), but not a
    normalisation layer's running statistics, which training sets."""
    if module is None:
        return set()
    names = set()
    for prefix, sub in module.named_modules(remove_duplicate=False):
        if isinstance(sub, torch.nn.modules.batchnorm._NormBase):
            continue
        for name, value in sub._buffers.items():
            if value is not None and name not in sub._non_persistent_buffers_set:
                names.add(f"{prefix}.{name}" if prefix else name)
    return names


def ema_notes(top: object, trail: list[str], state: Mapping) -> list[str]:
    """A note naming averaged (EMA) weights the checkpoint holds beside the ones used."""
    others = (
        [k for k in state_candidates(top) if k not in trail] if isinstance(top, Mapping) else []
    )
    others += ema_prefixes(state)
    averaged = [name for name in others if is_ema(name)]
    if not averaged or any(is_ema(k) for k in trail):
        return []
    names = _listed(averaged)
    return [f"the checkpoint also holds averaged weights ({names}); use them with --weights NAME"]


def _fmt(trail: list[str]) -> str:
    return "".join(f"[{shown_key(k, quoted=True)}]" for k in trail)


def _listed(names: Collection, limit: int = 8) -> str:
    """The first ``limit`` of ``names`` (keys), escaped and cut short, and how many more."""
    first = list(itertools.islice(names, limit))
    more = len(names) - len(first)
    return ", ".join(shown_key(k, quoted=True) for k in first) + (
        f" and {more} more" if more > 0 else ""
    )


def _align_prefix(
    state: dict, expected: set[str], optional: set[str] | frozenset = frozenset()
) -> tuple[dict, list[str]]:
    """Match ``state``'s keys to ``expected`` by stripping a prefix such as ``model.``; keys of
    ``optional`` (buffers the constructor made, :func:`constructor_buffers`) may be absent.

    A prefix shared by all keys is stripped if that matches more keys. Otherwise the keys under
    one prefix are used if they match exactly (e.g. ``generator.`` in a GAN checkpoint); when
    several prefixes match, a usual name (``model.``, ``module.``...) wins, else it is ambiguous.

    Each round counts the keys under each first component in one pass (a key belongs to exactly
    one group) and builds only the groups that can be used (all the keys, or as many as
    expected), so it is linear in the keys' size however many prefixes there are; comparing
    every prefix with every key took minutes on 20,000 prefixes. A round strips a prefix only
    when more keys match after it, so there are at most ``len(expected) + 1`` rounds.
    """
    notes = []
    least = len(expected) - len(optional)
    while not _covers(state.keys(), expected, optional):
        sizes = prefix_groups(state)  # counted first: only groups that can matter are built
        wanted = {p for p, n in sizes.items() if n == len(state) or least <= n <= len(expected)}
        groups: dict[str, dict] = {p: {} for p in wanted}
        if len(wanted) <= 4:  # the usual case: pick each group's keys by a scan in C
            for pre in wanted:
                cut = len(pre)
                groups[pre] = {
                    k[cut:]: state[k] for k in filter(methodcaller("startswith", pre), state)
                }
        else:  # many candidate groups (an arch of one key): one pass sorts every key
            for key, value in state.items():
                head, dot, rest = key.partition(".")
                if dot and head + "." in groups:
                    groups[head + "."][rest] = value
        overlap = len(state.keys() & expected)
        shared = [p for p, sub in groups.items() if len(sub) == len(state)]
        if shared and len(groups[shared[0]].keys() & expected) > overlap:
            pre = shared[0]
        else:
            fits = sorted(
                p
                for p, sub in groups.items()
                if least <= len(sub) <= len(expected) and _covers(sub.keys(), expected, optional)
            )
            usual = [p for p in _USUAL_PREFIXES if p in fits]
            if not fits:
                break
            if len(fits) > 1 and not usual:
                shown_fits = ", ".join(shown_key(p) for p in fits[:5])
                more = f" and {len(fits) - 5} more" if len(fits) > 5 else ""
                raise UsageError(
                    f"several parts of the checkpoint fit --arch ({shown_fits}{more});"
                    " choose one with --weights PREFIX"
                )
            pre = (usual or fits)[0]
            if len(fits) > 1:
                others = ", ".join(shown_key(p, quoted=True) for p in fits[:6] if p != pre)
                notes.append(f"{others} fit(s) --arch too; pick with --weights PREFIX")
        dropped = len(state) - len(groups[pre])
        notes.append(
            f"stripped prefix {shown_key(pre, quoted=True)} from {len(groups[pre])} keys"
            + (f" and ignored {dropped} other keys" if dropped else "")
        )
        state = groups[pre]
    return state, notes


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
        state, stripped = _align_prefix(state, set(ref), built)
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
    return LoadedModel(evaluated(module), source, None, notes, trained=trained)
