"""MoA on the engine's batches: the ``data.moa`` option of every variant (the U-Net follow-up).

The engine calls a :class:`BatchMoA` on each batch after moving it to the device and before the
stage's ``train_step``. One operation of :class:`spsr.data.moa.MoA` is drawn per batch and applied
to LR and HR alike. Its random draws come from a generator seeded by ``(run.seed, iteration,
rank)`` only, so a resumed run augments exactly as an uninterrupted one, whatever the state of
the global generators.

A stage whose generator takes the LR image nearest-upsampled to HR size (the desubpixel head)
has a true :attr:`spsr.train.stage.Stage.takes_upsampled_lr` (read from the generator's
:class:`~spsr.archs.ArchSpec`); its batches then carry ``lr`` at HR size
(and MoA may use ``cutblur``, which puts HR pixels in it). Other stages get ``lr`` at LR size and
the operations that work there.
"""

from __future__ import annotations

import torch

from spsr.data.moa import MoA, nearest_upsample
from spsr.errors import ConfigError
from spsr.train.batches import sample_seed
from spsr.train.config import TrainConfig

# Seed positions of MoA's draws, apart from the positions of the samples' augmentations.
_MOA_POSITION = 1 << 41


class BatchMoA:
    """Augments training batches with MoA, reproducibly per iteration.

    Args:
        moa: the mixture of augmentations.
        seed: the run's seed.
        rank: this process's rank (each process augments its own share differently).
        upsample_lr: give the stage ``lr`` nearest-upsampled to HR size (desubpixel head).
    """

    def __init__(self, moa: MoA, seed: int, rank: int = 0, upsample_lr: bool = False) -> None:
        self.moa = moa
        self.seed = seed
        self.rank = rank
        self.upsample_lr = upsample_lr
        if not upsample_lr and not moa.available_ops(lr_at_hr_size=False):
            raise ConfigError(
                "MoA with only cutblur needs a generator with the desubpixel head "
                "(variant u); add other operations to data.moa_ops"
            )

    @classmethod
    def from_config(cls, cfg: TrainConfig, rank: int = 0, upsample_lr: bool = False) -> BatchMoA:
        """The augmenter ``cfg.data`` describes (``moa_ops``, ``moa_prob``)."""
        moa = MoA(cfg.model.scale, ops=cfg.data.moa_ops, prob=cfg.data.moa_prob)
        return cls(moa, cfg.run.seed, rank, upsample_lr)

    def generator(self, iteration: int) -> torch.Generator:
        """The CPU generator of one iteration's draws on this process."""
        return torch.Generator().manual_seed(
            sample_seed(self.seed, iteration, _MOA_POSITION + self.rank)
        )

    def __call__(self, batch: dict[str, torch.Tensor], iteration: int) -> dict[str, torch.Tensor]:
        """Augment ``batch["lr"]`` and ``batch["hr"]`` (other keys pass through).

        Args:
            batch: ``{"lr": (N,3,h,w), "hr": (N,3,sh,sw), ...}`` on any device.
            iteration: the 1-based iteration the batch is for.

        Returns:
            A new dict with the augmented pair (``lr`` at HR size when ``upsample_lr``).
        """
        lr, hr = batch["lr"], batch["hr"]
        if self.upsample_lr:
            lr = nearest_upsample(lr, self.moa.scale)
        result = self.moa(lr, hr, generator=self.generator(iteration))
        return {**batch, "lr": result.lr, "hr": result.hr}
