"""Short in-memory fits of an NSE pretext task (the evaluation's head re-fit, and tests)."""

from __future__ import annotations

import torch

from spsr.nse.sampling import CropSource, draw_crops
from spsr.nse.tasks import PretextTask, task_head


def fit_task(
    task: PretextTask,
    images: CropSource,
    *,
    crop_size: int,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    train_extractor: bool = True,
    seed: int = 0,
) -> list[float]:
    """Train a pretext task in memory on random crops (Adam, constant learning rate).

    The long, resumable pretraining is the ``pretrain-nse`` stage; this loop serves short fits:
    re-fitting a head with the extractor frozen for evaluation, and tests.

    Args:
        task: a :class:`ContrastiveTask` or :class:`JigsawTask`.
        images: 3×H×W tensors (float in [0, 1] or uint8) to crop from, or a crop dataset.
        crop_size: crop side in pixels.
        steps: optimiser steps.
        batch_size: crops per step.
        lr: Adam learning rate.
        train_extractor: False keeps the NSE frozen and fits only the head / predictor.
        seed: seed of the crop and anchor sampling.

    Returns:
        The loss of every step.
    """
    head = task_head(task)
    flags = [p.requires_grad for p in task.extractor.parameters()]
    task.extractor.requires_grad_(train_extractor)
    task.extractor.train(train_extractor)
    head.train()
    params = [p for p in task.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    device = next(task.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        batch = draw_crops(images, crop_size, batch_size, generator).to(device)
        result = task(batch, generator)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        losses.append(float(result.loss.detach()))
    for p, flag in zip(task.extractor.parameters(), flags, strict=True):
        p.requires_grad_(flag)
    return losses
