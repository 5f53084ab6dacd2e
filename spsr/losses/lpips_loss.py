"""LPIPS (AlexNet, v0.1) as a perceptual loss (the U-Net follow-up, eq. 6).

The network comes from :func:`spsr.losses.lpips_net.load_lpips_alex`, the same loader the LPIPS
metric uses; it stays frozen and in eval mode (its dropout off) whatever mode the owner is in.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from spsr.losses.lpips_net import load_lpips_alex, lpips_distance


class LPIPSLoss(nn.Module):
    """Mean LPIPS distance between SR and HR images given in [0, 1].

    Args:
        weights: AlexNet ImageNet weights file; None looks in torchvision's cache under TORCH_HOME.
        random_backbone: use a randomly initialised AlexNet trunk (tests only).

    Raises:
        MissingWeightsError: the AlexNet weights are not available locally.
    """

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, random_backbone: bool = False
    ) -> None:
        super().__init__()
        self.net = load_lpips_alex(weights, random_backbone=random_backbone)

    def train(self, mode: bool = True) -> LPIPSLoss:
        """Keep the LPIPS network in eval mode: it is a fixed measure, not a trained part."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """Mean LPIPS(sr, hr) over the batch.

        Args:
            sr: generated images ``(N, 3, H, W)`` in [0, 1].
            hr: ground truth of the same shape in [0, 1].

        Returns:
            Scalar loss, differentiable with respect to ``sr``.
        """
        return lpips_distance(self.net, sr, hr).mean()
