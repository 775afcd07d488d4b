"""Which module owns a tensor, so a functional stage is named by the module that owns its
filter (``pqmf:conv_transpose1d`` for ``F.conv_transpose1d(x, self.updown_filter * 4)``):
every parameter and buffer, and every small tensor computed from one, by ``id`` (a weak
reference checks that the id still means that tensor)."""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

OWNED_VALUES = 2**16
"""A tensor computed from a module's parameter or buffer is that module's when it holds at
most this many values (a filter, not a signal)."""


class TensorOwners:
    """The owners of a model's tensors, given ``names`` (``{module: qualified name}``)."""

    def __init__(self, names: dict[nn.Module, str]) -> None:
        self.owned: dict[int, tuple[Any, str]] = {}
        for module, name in names.items():
            owner = name.split(".parametrizations.")[0]
            for t in (*module._parameters.values(), *module._buffers.values()):
                if isinstance(t, torch.Tensor):
                    self.owned[id(t)] = (weakref.ref(t), owner)

    def owner(self, args: tuple, kwargs: dict, skip: Any = None) -> str | None:
        """The module owning the first owned tensor among a call's arguments (but ``skip``)."""
        for a in (*args, *kwargs.values()):
            if isinstance(a, torch.Tensor) and a is not skip:
                found = self.owned.get(id(a))
                if found is not None and found[0]() is a:
                    return found[1]
        return None

    def derive(self, args: tuple, kwargs: dict, out: Any) -> None:
        """A small tensor computed from an owned one is owned by the same module."""
        if not isinstance(out, torch.Tensor) or out.numel() > OWNED_VALUES:
            return
        owner = self.owner(args, kwargs)
        if owner is not None:
            self.owned[id(out)] = (weakref.ref(out), owner)
