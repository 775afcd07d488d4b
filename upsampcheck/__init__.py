"""upsampcheck: diagnose upsampling artifacts in neural audio models.

``from upsampcheck import check_layer, check_model, LayerSpec`` gives the Python API
(:mod:`upsampcheck.api`); it is imported on first use, so the command line starts without torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

API = frozenset(
    {"AudioThresholds", "Finding", "LayerSpec", "Report", "StackSpec", "StageResult",
     "Thresholds", "UsageError", "check_audio", "check_layer", "check_model", "check_stack",
     "load_stack", "load_thresholds", "repair_model", "write_report"}
)  # fmt: skip
"""The names :mod:`upsampcheck.api` exports (its ``__all__``; a test keeps the two equal)."""


def __getattr__(name: str) -> Any:
    if name in API:
        return getattr(import_module(".api", __name__), name)
    raise AttributeError(f"module 'upsampcheck' has no attribute {name!r}")
