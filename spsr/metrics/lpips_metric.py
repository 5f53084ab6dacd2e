"""LPIPS as the papers report it: ``lpips`` package, AlexNet, v0.1, full RGB images in [-1, 1].

The network comes from the project's one LPIPS loader (:func:`spsr.losses.lpips_net.load_lpips_alex`):
the linear layers ship inside the ``lpips`` wheel, the AlexNet trunk is read from torchvision's cache
(``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``) or an explicit file, never downloaded.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from spsr.metrics.conventions import MetricInputError, as_uint8_image


class LPIPSMetric:
    """LPIPS distance (lower is better) between SR and HR images.

    Args:
        backbone: AlexNet ImageNet weights file; None looks in torchvision's cache.
        device: where the network runs.
        random_backbone: use a randomly initialised AlexNet trunk (tests only: not LPIPS).

    Raises:
        MissingWeightsError: AlexNet weights (or the lpips linear layers) are not available.
    """

    def __init__(
        self,
        backbone: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        random_backbone: bool = False,
    ) -> None:
        from spsr.losses.lpips_net import load_lpips_alex

        self.device = torch.device(device)
        self.net = load_lpips_alex(backbone, random_backbone=random_backbone, device=self.device)

    @torch.no_grad()
    def batch(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS of two ``(N, 3, H, W)`` batches in [0, 1] (quantised to 8 bits first,
        as the saved images would be).

        Returns:
            float64 tensor ``(N,)`` on the CPU.
        """
        from spsr.losses.lpips_net import lpips_distance

        if sr.shape != hr.shape or sr.ndim != 4 or sr.shape[1] != 3:
            raise MetricInputError(
                f"LPIPS needs two (N, 3, H, W) batches of one shape, got {tuple(sr.shape)} and "
                f"{tuple(hr.shape)}"
            )
        a = torch.round(sr.float().clamp(0, 1) * 255.0) / 255.0
        b = torch.round(hr.float().clamp(0, 1) * 255.0) / 255.0
        dist = lpips_distance(self.net, a.to(self.device), b.to(self.device))
        return dist.detach().double().cpu()

    def __call__(self, sr: np.ndarray, hr: np.ndarray) -> float:
        """LPIPS of one pair of 8-bit ``(H, W[, 3])`` images (grayscale counts as R = G = B)."""
        tensors = []
        for img, name in ((sr, "SR"), (hr, "HR")):
            u8 = as_uint8_image(img, name)
            if u8.ndim == 2:
                u8 = np.repeat(u8[:, :, None], 3, axis=2)
            tensors.append(torch.from_numpy(np.ascontiguousarray(u8.transpose(2, 0, 1))))
        if tensors[0].shape != tensors[1].shape:
            raise MetricInputError(
                f"SR is {tuple(tensors[0].shape[1:])} but HR is {tuple(tensors[1].shape[1:])}"
            )
        sr_t, hr_t = (t[None].float() / 255.0 for t in tensors)
        return float(self.batch(sr_t, hr_t)[0])
