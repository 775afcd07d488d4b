"""State dicts as training runs save them: pick the weights (EMA or raw), convert between the two
weight-norm layouts, and the plain types a checkpoint may carry beside its tensors.

**Weight norm.** ``torch.nn.utils.weight_norm`` (the old API, used by most published HiFi-GAN
and MelGAN weights) stores ``NAME_g`` and ``NAME_v``; ``torch.nn.utils.parametrizations.
weight_norm`` stores ``parametrizations.NAME.original0`` and ``...original1`` for the same two
tensors (``g``, the norm, and ``v``, the direction: ``w = g · v / ‖v‖``), with the same shapes.
Converting is an exact renaming, done in whichever direction the architecture expects.

**Choosing the weights.** A checkpoint may hold several candidate state dicts: sub-dicts
(``{"model": ..., "ema": ...}``, ``state_dict_ema``, ``model_ema``) or key prefixes inside one
(``model.`` beside ``model_ema.``, ``gen.`` beside ``gen_ema.``). ``--weights KEY_OR_PREFIX``
picks one; without it the raw weights are used where a usual name says which they are, and the
note lists the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import UsageError

OLD_NORM = re.compile(r"^(?P<base>.*?)(?P<name>[A-Za-z_]\w*)_(?P<part>[gv])$")
NEW_NORM = re.compile(r"^(?P<base>.*?)parametrizations\.(?P<name>\w+)\.original(?P<part>[01])$")
EMA_WORDS = ("ema", "average", "avg", "swa")


def is_state_dict(obj: object) -> bool:
    """A mapping of names to tensors; an empty one is the state of a parameterless model."""
    return (
        isinstance(obj, Mapping)
        and all(isinstance(k, str) for k in obj)
        and (not obj or any(isinstance(v, torch.Tensor) for v in obj.values()))
        and not any(isinstance(v, Mapping | torch.nn.Module) for v in obj.values())
    )


def convert_weight_norm(state: dict, expected: set[str]) -> tuple[dict, list[str]]:
    """Rename weight-norm keys of ``state`` to the layout the ``expected`` keys use.

    ``X.weight_g``/``X.weight_v`` become ``X.parametrizations.weight.original0``/``original1``
    when the architecture has the latter (compared by suffix, so a prefix such as ``module.``
    still to be stripped does not stop it), and back. Returns the state and a note.
    """
    suffixes = {k.split(".", 1)[-1] for k in expected} | expected
    renamed, converted = {}, 0
    for key, value in state.items():
        new = _new_style(key) if _wanted(_new_style(key), suffixes) else None
        if new is None and _wanted(_old_style(key), suffixes):
            new = _old_style(key)
        if new is not None and key not in expected:
            renamed[new] = value
            converted += 1
        else:
            renamed[key] = value
    if not converted:
        return state, []
    return renamed, [f"converted {converted // 2} weight-norm layer(s) to the --arch layout"]


def _new_style(key: str) -> str | None:
    match = OLD_NORM.match(key)
    if match is None:
        return None
    part = "0" if match["part"] == "g" else "1"
    return f"{match['base']}parametrizations.{match['name']}.original{part}"


def _old_style(key: str) -> str | None:
    match = NEW_NORM.match(key)
    if match is None:
        return None
    return f"{match['base']}{match['name']}_{'g' if match['part'] == '0' else 'v'}"


def _wanted(key: str | None, suffixes: set[str]) -> bool:
    return key is not None and any(key == s or key.endswith("." + s) for s in suffixes)


def is_ema(name: str) -> bool:
    """Whether a key or prefix names averaged weights (``ema``, ``model_ema.``, ``swa``...)."""
    words = re.split(r"[^a-z]+", name.lower())
    return any(word in EMA_WORDS for word in words)


def state_candidates(obj: Mapping) -> dict[str, dict]:
    """Sub-dicts of ``obj`` (one level down, and inside a ``state_dict`` wrapper) that are
    state dicts, by key."""
    found = {k: v for k, v in obj.items() if isinstance(k, str) and is_state_dict(v) and v}
    return found


def prefix_groups(state: Mapping[str, Any]) -> dict[str, int]:
    """First key components with the number of keys under each (``{"gen.": 12, ...}``)."""
    groups: dict[str, int] = {}
    for key in state:
        if "." in key:
            prefix = key.split(".", 1)[0] + "."
            groups[prefix] = groups.get(prefix, 0) + 1
    return groups


def select_weights(obj: object, weights: str, where: str) -> tuple[dict, list[str]]:
    """The state dict ``--weights`` names: a sub-dict key of the checkpoint (looked up at the
    top and below the usual wrappers) or a key prefix (``gen_ema`` or ``gen_ema.``), stripped."""
    layers = [obj]
    while isinstance(layers[-1], Mapping) and len(layers) < 4:
        inner = next(
            (layers[-1][k] for k in ("state_dict", "model", "module") if k in layers[-1]), None
        )
        if not isinstance(inner, Mapping):
            break
        layers.append(inner)
    for layer in layers:
        if isinstance(layer, Mapping) and is_state_dict(layer.get(weights)):
            return dict(layer[weights]), [f"using the weights under {weights!r} (--weights)"]
    prefix = weights if weights.endswith(".") else weights + "."
    for layer in layers:
        if is_state_dict(layer):
            sub = {k[len(prefix) :]: v for k, v in layer.items() if k.startswith(prefix)}
            if sub:
                note = f"using the {len(sub)} keys under prefix {prefix!r} (--weights)"
                return sub, [note]
    raise UsageError(
        f"{where}: --weights {weights!r} names no part of the checkpoint; "
        f"it holds {describe_candidates(obj)}"
    )


def describe_candidates(obj: object) -> str:
    """The sub-dicts and prefixes ``--weights`` could name, in words."""
    if not isinstance(obj, Mapping):
        return f"a {type(obj).__name__}"
    subs = list(state_candidates(obj))
    inner = obj.get("state_dict") if isinstance(obj.get("state_dict"), Mapping) else obj
    prefixes = list(prefix_groups(inner)) if is_state_dict(inner) else []
    parts = []
    if subs:
        parts.append("state dicts under " + ", ".join(map(repr, subs)))
    if prefixes:
        parts.append("key prefixes " + ", ".join(map(repr, prefixes[:8])))
    return " and ".join(parts) or "keys " + ", ".join(map(repr, list(obj)[:5]))


def safe_types() -> list[Any]:
    """Plain types that run no code when unpickled, allowed beside tensors under
    ``weights_only=True``: paths and ``argparse.Namespace`` (Lightning hyper-parameters),
    numpy scalars and dtypes (metrics saved beside the weights)."""
    import argparse
    import pathlib

    allowed: list[Any] = [
        pathlib.PosixPath,
        pathlib.WindowsPath,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        argparse.Namespace,
    ]
    try:
        import numpy as np

        try:
            from numpy._core.multiarray import scalar
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import scalar
        allowed += [scalar, np.dtype]
        allowed += [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"]
    except ImportError:
        pass
    return allowed
