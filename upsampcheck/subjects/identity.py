"""Which stages are the same operation: one op or module type with the same configuration and
bit-identical weights. BigVGAN runs one Kaiser-sinc ``conv_transpose1d`` kernel in 73 places;
driven alone at one input rate and width they would give 73 identical measurements, so each
group is driven once (:func:`groups_of`).

Two stages are the same when their *cheap keys* agree (kind, rate factor, the input's shape
without batch and time, the module's type and ``repr`` (stride, padding, groups ...), the
shapes and dtypes of its tensors) and then their *fingerprints* do: a BLAKE2b hash of every
tensor's bytes (a module's parameters and buffers, a functional call's other arguments) and
the ``repr`` of everything else. Only stages whose cheap keys collide are hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable

import torch

from .stages import Stage


def _tensors(stage: Stage) -> list[tuple[str, object]]:
    """``(name, value)`` of what parametrises the stage besides its input."""
    if stage.module is not None:
        state = stage.module.state_dict(keep_vars=True)
        return [(k, v) for k, v in state.items()] + [("repr", repr(stage.module))]
    args, kwargs = stage.operands or ((), ())
    return [(str(i), a) for i, a in enumerate(args)] + [(k, v) for k, v in kwargs]


def _describe(value: object) -> Hashable:
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype))
    if isinstance(value, (list, tuple)):
        return tuple(_describe(v) for v in value)
    return repr(value)


def cheap_key(stage: Stage) -> Hashable:
    """What must agree before two stages are worth hashing."""
    module = type(stage.module).__name__ if stage.module is not None else None
    parts = tuple((name, _describe(v)) for name, v in _tensors(stage))
    return (stage.kind, stage.factor, tuple(stage.in_shape[1:-1]), module, parts)


def fingerprint(stage: Stage) -> str:
    """A hash of every tensor's bytes and every other argument's ``repr``."""
    digest = hashlib.blake2b(digest_size=16)

    def feed(value: object) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach()
            digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
            if t.is_complex():
                t = torch.view_as_real(t)
            digest.update(t.contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, (list, tuple)):
            digest.update(b"(")
            for v in value:
                feed(v)
            digest.update(b")")
        else:
            digest.update(repr(value).encode())

    for name, value in _tensors(stage):
        digest.update(name.encode())
        feed(value)
    return digest.hexdigest()


def groups_of(stages: Iterable[tuple[Stage, Hashable]]) -> list[list[Stage]]:
    """The stages grouped by sameness, each group in the order given; ``stages`` pairs each
    stage with whatever else must agree (its input rate). Groups keep the order of their
    first member."""
    by_cheap: dict[Hashable, list[Stage]] = {}
    for stage, extra in stages:
        by_cheap.setdefault((cheap_key(stage), extra), []).append(stage)
    groups: list[list[Stage]] = []
    for members in by_cheap.values():
        if len(members) == 1:
            groups.append(members)
            continue
        by_print: dict[str, list[Stage]] = {}
        for stage in members:
            by_print.setdefault(fingerprint(stage), []).append(stage)
        groups.extend(by_print.values())
    order = {id(s): i for i, (s, _) in enumerate(stages)} if isinstance(stages, list) else {}
    return sorted(groups, key=lambda g: order.get(id(g[0]), 0))
