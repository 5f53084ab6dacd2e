"""The base class of a training stage (see :mod:`spsr.train.engine` for the extension guide)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.optim import Adam, Optimizer
from torch.optim.lr_scheduler import LRScheduler, MultiStepLR

from spsr.errors import ConfigError
from spsr.train.config import OptimConfig, TrainConfig
from spsr.train.runtime import Runtime
from spsr.weights.fetch import Need


def make_adam(params: Any, optim: OptimConfig, lr: float, weight_decay: float = 0.0) -> Adam:
    """Adam with the configured betas and eps (β (0.9, 0.999), ε 1e-8 in the papers)."""
    return Adam(params, lr=lr, betas=(optim.beta1, optim.beta2), eps=optim.eps, weight_decay=weight_decay)


def make_multistep(optimizer: Optimizer, optim: OptimConfig) -> MultiStepLR:
    """MultiStepLR over iterations: multiply by ``gamma`` at each of ``milestones``."""
    return MultiStepLR(optimizer, milestones=list(optim.milestones), gamma=optim.gamma)


class Stage:
    """A training stage: declares networks and optimizers, and does one iteration.

    Subclasses build everything in ``__init__`` (call ``super().__init__`` first) with
    :meth:`add_network` / :meth:`add_optimizer`, and implement :meth:`train_step`. Optional
    hooks: :meth:`initialize` (``--init``), :meth:`extra_state` / :meth:`load_extra_state`,
    :meth:`save_artifacts`.

    Args:
        cfg: the resolved configuration.
        rt: the engine's runtime (device, precision, DDP, step helpers).
    """

    #: True when ``train_step`` hands the generator an ``lr`` at HR size with ``upsampled=True``
    #: (the U-Net stage): MoA then gives it one whenever the generator takes it.
    feeds_upsampled_lr: ClassVar[bool] = False

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        self.cfg = cfg
        self.rt = rt

    @classmethod
    def needs(cls, cfg: TrainConfig) -> list[Need]:
        """The model files (ImageNet weights...) a run of this stage with ``cfg`` loads before it
        starts; ``spsr fetch`` and ``spsr ablate`` read them through
        :func:`spsr.train.needs.training_needs`. None by default."""
        return []

    @property
    def takes_upsampled_lr(self) -> bool:
        """MoA (``data.moa``) hands ``lr`` nearest-upsampled to HR size and may use CutBlur: the
        stage feeds it (:attr:`feeds_upsampled_lr`) and the exported generator's spec takes it
        (:attr:`spsr.archs.ArchSpec.takes_upsampled_lr`, the desubpixel head)."""
        if not self.feeds_upsampled_lr or not self.rt.has_export():
            return False
        return bool(self.rt.export_entry()[1].export_spec.takes_upsampled_lr)

    # ------------------------------------------------------------------ declarations

    def add_network(
        self,
        name: str,
        module: nn.Module,
        trainable: bool = True,
        export_spec: Any = None,
        find_unused_parameters: bool = False,
    ) -> nn.Module:
        """Register a network; returns what to call in ``train_step`` (DDP-wrapped if distributed).

        Args:
            name: key in the checkpoint (``G``, ``D``, ``D_grad``...).
            module: the network.
            trainable: False for frozen helpers (VGG, NSE): eval mode, no gradients, not saved.
            export_spec: the generator's ArchSpec: marks the network written to
                ``model.safetensors`` / ``best.safetensors``, validated, and averaged by EMA.
            find_unused_parameters: DDP option for networks with parameters a step may not use.
        """
        return self.rt.register_network(name, module, trainable, export_spec, find_unused_parameters)

    def add_optimizer(
        self, name: str, optimizer: Optimizer, scheduler: LRScheduler | None = None
    ) -> Optimizer:
        """Register an optimizer (and scheduler); step it with ``self.rt.optimize(loss, name)``."""
        return self.rt.register_optimizer(name, optimizer, scheduler, self.cfg.optim.grad_clip)

    def module(self, name: str) -> nn.Module:
        """The plain module of a registered network (not the DDP wrapper)."""
        return self.rt.networks[name].module

    # ------------------------------------------------------------------ hooks

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Run one iteration on this process's batch (already on the device).

        Returns:
            Named scalars to log (``g/pixel``, ``d/loss``...): the same keys every iteration.
        """
        raise NotImplementedError

    def initialize(self, source: str) -> list[str]:
        """Load ``--init`` weights into the generator (fresh runs only); returns the keys set."""
        from spsr.train.init_from import load_init

        if not self.rt.has_export():
            raise ConfigError(f"--init sets a generator's weights, and the {self.cfg.stage} stage trains none")
        _, entry = self.rt.export_entry()
        self.init_warnings: list[str] = []  # what detection guessed; the engine reports them
        return load_init(entry.module, entry.export_spec, source, self.init_warnings)

    def extra_state(self) -> dict[str, Any]:
        """Anything else the stage must checkpoint (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def save_artifacts(self, run_dir: Path, iteration: int, provenance: dict[str, Any]) -> None:
        """Write extra files into the run folder at every checkpoint (rank 0 only), e.g. the weights
        of a network that is not a generator (the engine writes ``model.safetensors`` itself).
        ``provenance`` is what the engine records of the run (commands, data, time...), for the
        files' metadata."""
