"""Fitting a checkpoint's tensors to the module ``--arch`` builds: which state dict of a
checkpoint to use (:func:`unwrap`: wrapper keys, Lightning, the only sub-dict that fits),
which key prefix to strip (:func:`align_prefix`, linear in the keys' size), and which
buffers the constructor made and a checkpoint may lack (:func:`constructor_buffers`)."""

from __future__ import annotations

import itertools
import pathlib
from collections.abc import Collection, Mapping
from operator import methodcaller

import torch

from upsampcheck.errors import UsageError
from upsampcheck.paths import shown

from .state_dicts import (
    convert_weight_norm,
    ema_prefixes,
    is_ema,
    is_state_dict,
    prefix_groups,
    shown_key,
    state_candidates,
)

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "generator")
_USUAL_PREFIXES = ("model.", "module.", "net.", "generator.", "model_ema.", "ema.")
_LIGHTNING_KEYS = ("pytorch-lightning_version", "global_step", "epoch", "optimizer_states")


def _a(noun: str) -> str:
    """``noun`` with its indefinite article ("an OrderedDict", "a list")."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def unwrap(
    path: pathlib.Path, obj: object, ref: dict | None = None, optional: Collection[str] = ()
) -> tuple[dict | torch.nn.Module, str, list[str]]:
    """Find the state dict (or, trusted, the module) in a checkpoint: ``(state, source, notes)``.

    Of several state dicts side by side (``{"model_g": ..., "model_d": ...}``), the only one
    that fits the ``--arch`` module's state dict ``ref`` (:func:`fits_arch`) is chosen, with a
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
            fitting = [k for k, sub in found.items() if fits_arch(sub, ref, optional)]
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


def fits_arch(state: Mapping, ref: dict | None, optional: Collection[str]) -> bool:
    """Whether ``state`` loads into the module whose state dict is ``ref``: after weight-norm
    conversion and prefix alignment, its keys are ``ref``'s (less any of the ``optional``
    constructor buffers) with the same shapes. A state dict with several fitting prefixes
    fits."""
    if ref is None or not isinstance(state, dict):
        return False
    expected = set(ref)
    converted, _ = convert_weight_norm(state, expected)
    try:
        aligned, _ = align_prefix(converted, expected, set(optional))
    except UsageError:
        return True  # several parts of it fit
    return covers(aligned.keys(), expected, optional) and all(
        not isinstance(value, torch.Tensor) or value.shape == ref[key].shape
        for key, value in aligned.items()
    )


def covers(keys: Collection[str], expected: set[str], optional: Collection[str]) -> bool:
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


def align_prefix(
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
    while not covers(state.keys(), expected, optional):
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
                if least <= len(sub) <= len(expected) and covers(sub.keys(), expected, optional)
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
