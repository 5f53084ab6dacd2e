"""Exponential moving average of a network's weights (optional, off by default: the papers train
without it)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """``ema ← decay·ema + (1 − decay)·weights`` after every iteration; buffers are copied.

    Args:
        module: the network to follow (its plain module, not a DDP wrapper).
        decay: in [0, 1), e.g. 0.999.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards ``module``'s current weights."""
        for avg, cur in zip(self.module.parameters(), module.parameters(), strict=True):
            avg.lerp_(cur.detach(), 1.0 - self.decay)
        for avg_buf, buf in zip(self.module.buffers(), module.buffers(), strict=True):
            avg_buf.copy_(buf)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)
