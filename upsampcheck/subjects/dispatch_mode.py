"""A dispatch mode whose handler torch calls directly.

torch wraps every :class:`~torch.utils._python_dispatch.TorchDispatchMode` subclass's
``__torch_dispatch__`` in ``torch._disable_dynamo``, which imports ``torch._dynamo`` on the
first op the mode sees: 1.1 to 1.7 s on two cores, longer than a short model's whole forward
(EnCodec's decoder at 163,840 output samples). The tool's modes count or record the ops of
eager models and exported programs, never inside ``torch.compile``, so they opt out of the
wrapper: no dynamo import, nothing else changed.
"""

from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode


class PlainDispatchMode(TorchDispatchMode):
    """:class:`TorchDispatchMode` without the dynamo-disabling wrapper (torch's documented
    opt-out, ``_should_skip_dynamo``; a torch without it never wraps)."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False
