"""upsampcheck: diagnose upsampling artifacts in neural audio models.

``from upsampcheck import check_layer, check_model, LayerSpec`` gives the Python API
(:mod:`upsampcheck.api`, see its ``__all__``); it is imported on first use, so the command line
starts without torch.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if not name.startswith("_") and name != "api":
        api = import_module(".api", __name__)
        if name in api.__all__:
            return getattr(api, name)
    raise AttributeError(f"module 'upsampcheck' has no attribute {name!r}")
