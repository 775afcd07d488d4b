"""Which module owns a tensor, so a functional stage is named by the module that owns its
filter (``pqmf:conv_transpose1d`` for ``F.conv_transpose1d(x, self.updown_filter * 4)``), and
whether that filter is learned or fixed: every parameter and buffer, and every small tensor
computed from one, by ``id`` (a weak reference checks that the id still means that tensor).
A tensor is learned when it is, or is computed from, a trainable parameter; a buffer and what
is computed from buffers only is a fixed filter."""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

OWNED_VALUES = 2**16
"""A tensor computed from a module's parameter or buffer is that module's when it holds at
most this many values (a filter, not a signal)."""


def trainable(t: torch.Tensor) -> bool:
    """A trainable parameter: an ``nn.Parameter`` that requires grad."""
    return isinstance(t, nn.Parameter) and t.requires_grad


class TensorOwners:
    """The owners of a model's tensors, given ``names`` (``{module: qualified name}``)."""

    def __init__(self, names: dict[nn.Module, str]) -> None:
        self.owned: dict[int, tuple[Any, str, bool]] = {}  # id: (weak ref, owner, learned)
        for module, name in names.items():
            owner = name.split(".parametrizations.")[0]
            for t in (*module._parameters.values(), *module._buffers.values()):
                if isinstance(t, torch.Tensor):
                    self.owned[id(t)] = (weakref.ref(t), owner, trainable(t))

    def owner(self, args: tuple, kwargs: dict, skip: Any = None) -> str | None:
        """The module owning the first owned tensor among a call's arguments (but ``skip``)."""
        for a in (*args, *kwargs.values()):
            if a is not skip and (found := self._found(a)) is not None:
                return found[1]
        return None

    def _found(self, a: Any) -> tuple[Any, str, bool] | None:
        found = self.owned.get(id(a)) if isinstance(a, torch.Tensor) else None
        return found if found is not None and found[0]() is a else None

    def learned(self, args: tuple, kwargs: dict, skip: Any = None) -> bool:
        """True if a tensor among a call's arguments (but ``skip``) is a trainable parameter or
        computed from one: the call's filter is learned, not fixed."""
        for a in (*args, *kwargs.values()):
            if a is skip or not isinstance(a, torch.Tensor):
                continue
            found = self._found(a)
            if trainable(a) or (found is not None and found[2]):
                return True
        return False

    def derive(self, args: tuple, kwargs: dict, out: Any) -> None:
        """A small tensor computed from an owned one is owned by the same module, learned when
        one of its arguments is."""
        if not isinstance(out, torch.Tensor) or out.numel() > OWNED_VALUES:
            return
        owner = self.owner(args, kwargs)
        if owner is not None:
            self.owned[id(out)] = (weakref.ref(out), owner, self.learned(args, kwargs))
