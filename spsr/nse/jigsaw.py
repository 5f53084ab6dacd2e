"""The 2×2 jigsaw, the pretext task of SPSR-J's extractor F_J (TPAMI 2021 §4.2, eq. 13).

Four features on a 2×2 grid with non-overlapping receptive fields, shuffled by one of the 24
permutations; a 3-layer classifier names the permutation (cross-entropy, eq. 13).

The task module owns the extractor and the head, so one ``DistributedDataParallel`` wraps both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from spsr.errors import ConfigError
from spsr.nse.extractor import JIGSAW_PERMUTATIONS, JigsawHead, NeuralStructureExtractor
from spsr.nse.geometry import anchor_bounds, gather_features, sample_positions, separation
from spsr.nse.result import TaskResult


class JigsawTask(nn.Module):
    """2×2 jigsaw on the NSE features: which of the 24 permutations shuffled the four tiles.

    Args:
        extractor: the NSE being trained (or frozen, to fit the head alone).
        head: J, a :class:`JigsawHead` with 4 tiles.
        puzzles_per_image: grids sampled on each image's feature map per pass.
    """

    permutations: torch.Tensor

    def __init__(
        self, extractor: NeuralStructureExtractor, head: JigsawHead, puzzles_per_image: int = 8
    ) -> None:
        super().__init__()
        if head.num_tiles != 4:
            raise ConfigError("the jigsaw task uses a 2×2 grid: the head must take 4 tiles")
        step = separation()
        self.grid = ((0, 0), (0, step), (step, 0), (step, step))
        self.extractor = extractor
        self.head = head
        self.puzzles_per_image = puzzles_per_image
        self.register_buffer("permutations", torch.tensor(JIGSAW_PERMUTATIONS), persistent=False)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TaskResult:
        """Args:
            images: N×3×H×W crops in [0, 1] (H, W ≥ 64).
            generator: CPU generator for grid positions and permutations.

        Returns:
            The cross-entropy loss and the classification accuracy.
        """
        n, k = images.shape[0], self.puzzles_per_image
        low, high = anchor_bounds(images.shape[-2:], self.grid, "a 2×2 jigsaw")
        corners = sample_positions((n, k), low, high, generator)
        labels = torch.randint(0, len(JIGSAW_PERMUTATIONS), (n, k), generator=generator)
        corners, labels = corners.to(images.device), labels.to(images.device)
        tiles_at = corners.unsqueeze(-2) + torch.tensor(self.grid, device=images.device)

        features = self.extractor(images)
        flat = features.flatten(2).transpose(1, 2)
        tiles = gather_features(flat, tiles_at, features.shape[-1])  # N×K×4×C
        order = self.permutations[labels]  # N×K×4: shuffled[t] = tiles[order[t]]
        shuffled = torch.gather(tiles, 2, order.unsqueeze(-1).expand_as(tiles))
        logits = self.head(shuffled)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        correct = int((logits.argmax(-1) == labels).sum())
        return TaskResult(loss, correct, labels.numel())
