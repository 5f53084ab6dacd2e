"""Contrastive prediction, the pretext task of SPSR-P's extractor F_P (TPAMI 2021 §4.2, eq. 11–12).

A predictor P maps the structure features of M neighbour positions (horizontal: left and right,
vertical: above and below, cross: all four) to a prediction p_t of the target's feature f_t;
InfoNCE (eq. 11) picks f_t among the negatives of the same feature map, with the similarity
h(f, p) = exp(τ·cos(f, p)), τ = 64 (eq. 12). Receptive fields of the inputs and the target do not
overlap each other, and a negative's overlaps none of them (:mod:`spsr.nse.geometry`).

The task module owns the extractor and the predictor, so one ``DistributedDataParallel`` wraps both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from spsr.errors import ConfigError
from spsr.nse.extractor import ContrastivePredictor, NeuralStructureExtractor
from spsr.nse.geometry import (
    anchor_bounds,
    gather_features,
    negative_mask,
    sample_positions,
    sampling_offsets,
    separation,
)
from spsr.nse.result import TaskResult

#: τ of eq. 12 ("set to 64 for stable convergence").
DEFAULT_TAU = 64.0


class ContrastiveTask(nn.Module):
    """Contrastive prediction (InfoNCE) on the NSE features.

    Args:
        extractor: the NSE being trained (or frozen, to fit the predictor alone).
        predictor: P, with ``num_inputs`` matching the sampling.
        sampling: 'horizontal', 'vertical' or 'cross'.
        tau: τ of the similarity exp(τ·cos).
        anchors_per_image: targets sampled on each image's feature map per pass.
    """

    def __init__(
        self,
        extractor: NeuralStructureExtractor,
        predictor: ContrastivePredictor,
        sampling: str = "horizontal",
        tau: float = DEFAULT_TAU,
        anchors_per_image: int = 8,
    ) -> None:
        super().__init__()
        self.offsets = sampling_offsets(sampling, separation())
        if predictor.num_inputs != len(self.offsets):
            raise ConfigError(
                f"{sampling} sampling has {len(self.offsets)} inputs but the predictor takes "
                f"{predictor.num_inputs}"
            )
        self.extractor = extractor
        self.predictor = predictor
        self.sampling = sampling
        self.tau = tau
        self.anchors_per_image = anchors_per_image

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TaskResult:
        """Args:
            images: N×3×H×W crops in [0, 1] (H, W ≥ 100 for horizontal sampling).
            generator: CPU generator for the anchor positions (reproducible evaluation).

        Returns:
            The InfoNCE loss and the top-1 accuracy over the sampled anchors.
        """
        n = images.shape[0]
        low, high = anchor_bounds(images.shape[-2:], self.offsets, f"{self.sampling} sampling")
        targets = sample_positions((n, self.anchors_per_image), low, high, generator)
        targets = targets.to(images.device)
        offsets = torch.tensor(self.offsets, device=images.device)
        inputs = targets.unsqueeze(-2) + offsets  # N×K×M×2

        features = self.extractor(images)
        height, width = features.shape[-2:]
        flat = features.flatten(2).transpose(1, 2)  # N×HW×C
        prediction = self.predictor(gather_features(flat, inputs, width))  # N×K×C

        occupied = torch.cat([targets.unsqueeze(-2), inputs], dim=-2)
        negatives = negative_mask(height, width, occupied, separation())
        labels = targets[..., 0] * width + targets[..., 1]
        candidates = negatives.scatter(-1, labels.unsqueeze(-1), True)
        # τ = 64 magnifies rounding: the similarities are computed in float32 even under autocast.
        with torch.autocast(images.device.type, enabled=False):
            logits = self.tau * torch.bmm(
                F.normalize(prediction.float(), dim=-1),
                F.normalize(flat.float(), dim=-1).transpose(1, 2),
            )  # N×K×HW, τ·cos
            logits = logits.masked_fill(~candidates, float("-inf"))
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        correct = int((logits.argmax(-1) == labels).sum())
        return TaskResult(loss, correct, labels.numel(), float(negatives.sum(-1).float().mean()))
