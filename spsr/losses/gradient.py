"""Gradient-space losses of SPSR-G: the gradient pixel loss on M(SR) vs M(HR).

Two forms (CVPR 2020 §3.2.1 and the official code):

* ``paper`` (default): ``L1(M(SR), M(HR))`` with the padding-1 operator, as CVPR 2020 eq. (7) writes.
* ``official``: ``MSE(M(SR), M(HR))`` with the padding-2 operator (output ``H+2 × W+2``), as the
  official code trains; the same padding-2 maps are then what the gradient discriminator sees.

The operator is :class:`spsr.ops.GradientMap`: fixed kernels held as buffers, never trained.
"""

from __future__ import annotations

import torch
from torch import nn

from spsr.errors import ConfigError
from spsr.losses.pixel import pixel_distance
from spsr.ops import GradientMap

GRADIENT_LOSS_FORMS = ("paper", "official")


class GradientPixelLoss(nn.Module):
    """Distance between the gradient maps of a prediction and a target.

    Args:
        form: ``paper`` (L1, padding 1) or ``official`` (MSE, padding 2).

    Attributes:
        gradient: the fixed operator whose maps the loss compares; use it to make the gradient
            maps fed to the gradient discriminator so both see the same maps.
    """

    def __init__(self, form: str = "paper") -> None:
        super().__init__()
        if form not in GRADIENT_LOSS_FORMS:
            raise ConfigError(
                f"unknown gradient loss form {form!r}; choose one of {', '.join(GRADIENT_LOSS_FORMS)}"
            )
        self.form = form
        self.criterion = "l1" if form == "paper" else "l2"
        self.gradient = GradientMap(padding=1 if form == "paper" else 2)

    def maps(self, images: torch.Tensor) -> torch.Tensor:
        """``M(images)`` in float32 (outside autocast: the square root of small differences is
        where reduced precision would hurt)."""
        with torch.autocast(images.device.type, enabled=False):
            return self.gradient(images.float())

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss between ``M(prediction)`` and ``M(target)`` (images ``(N, C, H, W)``)."""
        return self.distance(self.maps(prediction), self.maps(target))

    def distance(self, prediction_maps: torch.Tensor, target_maps: torch.Tensor) -> torch.Tensor:
        """The loss between two gradient maps already computed with :meth:`maps`."""
        return pixel_distance(prediction_maps, target_maps, self.criterion)
