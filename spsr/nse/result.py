"""The outcome of one forward pass of an NSE pretext task."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TaskResult:
    """Outcome of one pretext-task forward pass.

    Attributes:
        loss: mean loss (differentiable).
        correct: number of anchors / puzzles answered right (top-1).
        total: number of anchors / puzzles.
        mean_negatives: contrastive only: mean negatives per anchor (0 for jigsaw).
    """

    loss: torch.Tensor
    correct: int
    total: int
    mean_negatives: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)
