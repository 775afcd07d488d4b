"""upsampcheck: diagnose upsampling artifacts in neural audio models.

``from upsampcheck import check_layer, check_model, LayerSpec`` gives the Python API
(:mod:`upsampcheck.api`); it is imported lazily, so the command line starts without torch.
"""

from typing import Any

__version__ = "0.1.0"

_API = (
    "LayerSpec",
    "Report",
    "StackSpec",
    "Thresholds",
    "check_layer",
    "check_model",
    "check_stack",
    "load_stack",
    "load_thresholds",
)


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'upsampcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), *_API]
