"""Image operators: gradient map M(·), MATLAB bicubic resize, MATLAB colour conversion and rounding.

Names are loaded on first use, so importing one numpy-only helper does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "rgb_to_y": "color",
    "rgb_to_y_np": "color",
    "GradientMap": "gradient",
    "gradient_map": "gradient",
    "bicubic_degrade": "resize",
    "imresize": "resize",
    "imresize_np": "resize",
    "mod_crop": "resize",
    "output_size": "resize",
    "resize_matrix": "resize",
    "round_half_away": "rounding",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"spsr.ops.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'spsr.ops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
