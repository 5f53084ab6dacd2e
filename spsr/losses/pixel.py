"""Pixel-wise reconstruction losses (L1, L2, Charbonnier)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spsr.errors import ConfigError

PIXEL_CRITERIA = ("l1", "l2", "charbonnier")


def pixel_distance(a: torch.Tensor, b: torch.Tensor, criterion: str = "l1") -> torch.Tensor:
    """Mean pixel distance between two tensors of the same shape.

    Args:
        a: prediction.
        b: target (not detached here; detach it yourself if it must not get gradients).
        criterion: ``l1`` (mean absolute error), ``l2`` (mean squared error) or ``charbonnier``
            (``mean(sqrt((a-b)² + 1e-6))``).

    Returns:
        A scalar tensor, computed in float32 even under autocast.
    """
    a, b = a.float(), b.float()
    if criterion == "l1":
        return F.l1_loss(a, b)
    if criterion == "l2":
        return F.mse_loss(a, b)
    if criterion == "charbonnier":
        return torch.sqrt((a - b) ** 2 + 1e-6).mean()
    raise ConfigError(f"unknown pixel criterion {criterion!r}; choose one of {', '.join(PIXEL_CRITERIA)}")


class PixelLoss(nn.Module):
    """``pixel_distance`` as a module with a fixed criterion.

    Args:
        criterion: one of ``PIXEL_CRITERIA``.
    """

    def __init__(self, criterion: str = "l1") -> None:
        super().__init__()
        if criterion not in PIXEL_CRITERIA:
            raise ConfigError(
                f"unknown pixel criterion {criterion!r}; choose one of {', '.join(PIXEL_CRITERIA)}"
            )
        self.criterion = criterion

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return pixel_distance(prediction, target, self.criterion)
