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
note lists the others. Of sub-dicts with no usual name (``model_g`` beside ``model_d``), the
only one that fits ``--arch`` is used (:func:`.fitting.unwrap`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from itertools import repeat
from operator import itemgetter
from typing import Any

import torch

from ..errors import UsageError

OLD_PARTS = {"_g": "0", "_v": "1"}
"""Old-style weight-norm key endings (``NAME_g``, ``NAME_v``) and the new-style part numbers."""
NEW_PARTS = {".original0": "_g", ".original1": "_v"}
PARAMETRIZATIONS = "parametrizations."
KEY_SHOWN = 120
"""Characters of a key a message shows; a longer key is cut in the middle."""
EMA_WORDS = ("ema", "average", "avg", "swa")
_EMA_HINT = re.compile("|".join(EMA_WORDS))
_head_dot = itemgetter(0, 1)
_FIRST_COMPONENT = re.compile(r"(?:\A|\0)([^.\0]*+\.)")
"""A key's first component and its dot, at the start of the text or after a NUL separator."""
"""Any of :data:`EMA_WORDS` anywhere: a literal alternation, one linear scan per name."""


def is_state_dict(obj: object) -> bool:
    """A mapping of names to tensors; an empty one is the state of a parameterless model.

    Decided on the sets of key and value types (``set(map(type, ...))`` runs in C): it runs on
    every candidate of a checkpoint that may hold hundreds of thousands of keys."""
    if not isinstance(obj, Mapping):
        return False
    if not all(issubclass(t, str) for t in set(map(type, obj.keys()))):
        return False
    values = set(map(type, obj.values()))
    if any(issubclass(t, Mapping | torch.nn.Module) for t in values):
        return False
    return not obj or any(issubclass(t, torch.Tensor) for t in values)


def convert_weight_norm(state: dict, expected: set[str]) -> tuple[dict, list[str]]:
    """Rename weight-norm keys of ``state`` to the layout the ``expected`` keys use.

    ``X.weight_g``/``X.weight_v`` become ``X.parametrizations.weight.original0``/``original1``
    when the architecture has the latter (compared by suffix, so a prefix such as ``module.``
    still to be stripped does not stop it), and back. Returns the state and a note.

    Linear in the size of the keys: the layouts are recognised by their endings (string
    operations, no backtracking pattern, which took minutes on one long key), and a key's
    dotted tails are looked up in a set, never compared with every expected key.
    """
    wanted = _Suffixes(expected)
    names = {}
    for key in state:
        if (key[-2:] in OLD_PARTS or key[-10:] in NEW_PARTS) and key not in expected:
            new = _new_style(key)
            if not wanted(new):
                new = _old_style(key)
            if wanted(new):
                names[key] = new
    if not names:
        return state, []
    renamed = {names.get(key, key): value for key, value in state.items()}
    return renamed, [f"converted {len(names) // 2} weight-norm layer(s) to the --arch layout"]


def _is_word(char: str) -> bool:
    """What ``\\w`` matches in a ``str`` pattern: a Unicode letter or digit, or ``_``."""
    return char.isalnum() or char == "_"


def _new_style(key: str) -> str | None:
    """``BASE NAME_g`` -> ``BASE parametrizations.NAME.original0`` (``_v``: ``original1``),
    where ``NAME`` is the longest identifier (ASCII letter or ``_``, then word characters)
    that ends the key before ``_g``/``_v``; else None."""
    part = OLD_PARTS.get(key[-2:])
    if part is None:
        return None
    stem = key[:-2]
    start = len(stem)
    while start > 0 and _is_word(stem[start - 1]):
        start -= 1
    while start < len(stem) and not (
        stem[start].isascii() and (stem[start].isalpha() or stem[start] == "_")
    ):
        start += 1  # the identifier starts at its first ASCII letter or underscore
    if start == len(stem):
        return None
    return f"{stem[:start]}{PARAMETRIZATIONS}{stem[start:]}.original{part}"


def _old_style(key: str) -> str | None:
    """``BASE parametrizations.NAME.original0`` -> ``BASE NAME_g`` (``original1``: ``_v``);
    ``NAME`` is one dotless run of word characters; else None."""
    ending = key[-len(".original0") :]
    part = NEW_PARTS.get(ending)
    if part is None:
        return None
    head, _, name = key[: -len(ending)].rpartition(".")
    if not name or not all(map(_is_word, name)) or not (head + ".").endswith(PARAMETRIZATIONS):
        return None
    return f"{head[: len(head) + 1 - len(PARAMETRIZATIONS)]}{name}{part}"


class _Suffixes:
    """Whether a key is one of ``expected`` or one of their tails after the first dot, or ends
    with ``.`` and one of those: a set lookup per dotted tail within the longest such name, so
    the cost per key is bounded by the architecture's names, not by the key's length."""

    def __init__(self, expected: set[str]) -> None:
        self.names = {k.split(".", 1)[-1] for k in expected} | set(expected)
        self.longest = max(map(len, self.names), default=0)

    def __call__(self, key: str | None) -> bool:
        if key is None:
            return False
        if key in self.names:
            return True
        low = max(0, len(key) - self.longest - 1)
        dot = key.rfind(".", low)
        while dot >= 0:
            if key[dot + 1 :] in self.names:
                return True
            dot = key.rfind(".", low, dot)
        return False


def shown_key(key: object, limit: int = KEY_SHOWN, quoted: bool = False) -> str:
    """A key as a message shows it: escaped as Python writes a string (control characters
    such as ANSI escapes become ``\\x1b``, a backslash ``\\\\``: nothing reaches the terminal
    raw), quoted if ``quoted``, and cut to about ``limit`` characters keeping both ends (a
    1 MB key stays one short line)."""
    text = str(key)
    if len(text) > limit:
        keep = (limit - 5) // 2
        text = f"{text[:keep]}[...]{text[-keep:]}"
    text = "".join(c if c.isprintable() and c != "\\" else repr(c)[1:-1] for c in text)
    return f"'{text}'" if quoted else text


def is_ema(name: str) -> bool:
    """Whether a key or prefix names averaged weights (``ema``, ``model_ema.``, ``swa``...)."""
    lower = name.lower()
    if _EMA_HINT.search(lower) is None:  # most names: one scan, no split
        return False
    return any(word in EMA_WORDS for word in re.split(r"[^a-z]+", lower))


def state_candidates(obj: Mapping) -> dict[str, dict]:
    """Sub-dicts of ``obj`` (one level down, and inside a ``state_dict`` wrapper) that are
    state dicts, by key."""
    if not any(issubclass(t, Mapping) for t in set(map(type, obj.values()))):
        return {}  # a state dict itself: no value to look into (decided in C)
    return {
        k: v
        for k, v in obj.items()
        if isinstance(v, Mapping) and isinstance(k, str) and v and is_state_dict(v)
    }


def prefix_groups(state: Mapping[str, Any]) -> dict[str, int]:
    """First key components with the number of keys under each (``{"gen.": 12, ...}``), in the
    order they first appear.

    All in C, since a checkpoint may hold hundreds of thousands of keys: the keys joined by
    NUL, each one's first component found by one possessive pattern (no backtracking: linear in
    the text), counted by ``Counter``. Keys that hold a NUL themselves are split with
    ``str.partition`` instead."""
    text = "\0".join(state)
    if text.count("\0") == max(len(state) - 1, 0):
        return dict(Counter(_FIRST_COMPONENT.findall(text)))
    counts = Counter(map(_head_dot, map(str.partition, state, repeat("."))))
    return {head + ".": n for (head, dot), n in counts.items() if dot}


def ema_prefixes(state: Mapping[str, Any]) -> list[str]:
    """The key prefixes of ``state`` that name averaged weights (:func:`is_ema`): one scan of
    all the keys joined (in C), and the prefixes grouped and tested only when that finds a
    hint of one."""
    if _EMA_HINT.search("\0".join(state).lower()) is None:
        return []
    return [p for p in prefix_groups(state) if is_ema(p)]


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
        f"{where}: --weights {shown_key(weights, quoted=True)} names no part of the checkpoint; "
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
        more = f" and {len(subs) - 8} more" if len(subs) > 8 else ""
        parts.append(
            "state dicts under " + ", ".join(shown_key(k, quoted=True) for k in subs[:8]) + more
        )
    if prefixes:
        parts.append("key prefixes " + ", ".join(shown_key(k, quoted=True) for k in prefixes[:8]))
    return " and ".join(parts) or "keys " + ", ".join(
        shown_key(k, quoted=True) for k in list(obj)[:5]
    )


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
