"""Image operators: gradient map M(·), MATLAB bicubic resize, MATLAB colour conversion."""

from spsr.ops.color import rgb_to_y, rgb_to_y_np
from spsr.ops.gradient import GradientMap, gradient_map
from spsr.ops.resize import (
    bicubic_degrade,
    imresize,
    imresize_np,
    mod_crop,
    output_size,
    resize_matrix,
)

__all__ = [
    "GradientMap",
    "bicubic_degrade",
    "gradient_map",
    "imresize",
    "imresize_np",
    "mod_crop",
    "output_size",
    "resize_matrix",
    "rgb_to_y",
    "rgb_to_y_np",
]
