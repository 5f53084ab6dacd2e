"""The NSE pretext stage: train the neural structure extractor by contrastive prediction or jigsaw.

Variants (``spsr pretrain-nse --task``):

* ``contrastive`` (F_P, SPSR-P): InfoNCE with τ = 64 on 420×420 crops (≈10 000 negatives per
  anchor), batch 48, Adam lr 1e-3 × 0.2 every 20 epochs (TPAMI 2021 §5.1);
* ``jigsaw`` (F_J, SPSR-J): 2×2 jigsaw over the 24 permutations, batch 48, lr 1e-4 decayed every 30
  epochs. The paper gives neither the decay factor nor the jigsaw training crop: 0.2 as for
  contrastive prediction, and 84×84, the jigsaw evaluation crop.

The one network, ``task`` (the extractor plus the predictor or the jigsaw head), is checkpointed,
resumed and DDP-wrapped by the engine; at every checkpoint the stage writes ``nse.safetensors``
(the extractor, what ``spsr train --nse`` reads) and ``nse_head.safetensors`` (the head).
Each batch is ``{"image": N×3×crop×crop}`` (:class:`spsr.nse.data.NSECropDataset`); a
patch store's ``{"hr"}`` patches are taken as they are.

Settings live in the ``[nse]`` configuration section (:class:`NSEConfig`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from spsr.errors import ConfigError
from spsr.nse import SAMPLINGS
from spsr.nse.data import check_augment
from spsr.nse.extractor import NeuralStructureExtractor
from spsr.nse.files import load_nse, save_head, save_nse
from spsr.nse.geometry import check_crop
from spsr.nse.tasks import PretextTask, check_task, make_task, new_head, task_head
from spsr.run_folder import NSE_FILE, NSE_HEAD_FILE, RunFolder
from spsr.train.config import TrainConfig, load_toml, register_section
from spsr.train.runtime import Runtime
from spsr.train.stage import Stage, make_adam, make_multistep
from spsr.train.variants import register_stage


@dataclass
class NSEConfig:
    """The pretext task (TOML section ``[nse]``, ``--set nse.KEY=...``).

    Attributes:
        task: ``contrastive`` or ``jigsaw`` (set by the variant).
        sampling: contrastive neighbours: ``horizontal`` | ``vertical`` | ``cross`` (App. B.1).
        augment: training-crop augmentation (:data:`spsr.nse.NSE_AUGMENTS`): ``flips``
            (default; left-right and up-down flips, which keep the sampling direction),
            ``dihedral`` (also 90° rotations, which turn horizontal neighbours into vertical
            ones) or ``none``; ``data.augment = false`` also turns it off.
        tau: τ of the similarity exp(τ·cos) (64).
        crop: training crop side in pixels (420 contrastive, 84 jigsaw).
        crops_per_image: random crops of each image (or stored patch) per epoch.
        anchors_per_image: contrastive targets drawn per crop and iteration.
        puzzles_per_image: jigsaw grids drawn per crop and iteration.
        mid_channels: width of the NSE's first stage (64).
        channels: channels of the structure features (32).
        head_hidden: width of the predictor's / jigsaw head's hidden layers.
        epochs: training length in epochs (one crop per stored patch or per image), used by
            ``spsr pretrain-nse`` to set ``run.iterations`` on a fresh run.
        lr_step_epochs: the learning rate is multiplied by ``optim.gamma`` every this many epochs
            (turned into ``optim.milestones`` the same way).
    """

    task: str = "contrastive"
    sampling: str = "horizontal"
    augment: str = "flips"
    tau: float = 64.0
    crop: int = 420
    crops_per_image: int = 1
    anchors_per_image: int = 16
    puzzles_per_image: int = 16
    mid_channels: int = 64
    channels: int = 32
    head_hidden: int = 256
    epochs: int = 60
    lr_step_epochs: int = 20


register_section("nse", NSEConfig)


def check_nse_config(n: NSEConfig) -> None:
    """Raise :class:`ConfigError` for an invalid ``[nse]`` section."""
    check_task(n.task)
    check_augment(n.augment)
    if n.sampling not in SAMPLINGS:
        raise ConfigError(f"unknown sampling {n.sampling!r}; choose one of {', '.join(SAMPLINGS)}")
    positive = ("crop", "crops_per_image", "anchors_per_image", "puzzles_per_image",
                "mid_channels", "channels", "head_hidden", "epochs", "lr_step_epochs")
    bad = [k for k in positive if getattr(n, k) < 1]
    if bad or n.tau <= 0:
        raise ConfigError(f"nse.{(bad or ['tau'])[0]} must be positive")
    check_crop(n.crop, n.task, n.sampling)


def build_task(n: NSEConfig, extractor: NeuralStructureExtractor | None = None) -> PretextTask:
    """The task module the ``[nse]`` section describes (a new extractor unless one is given)."""
    check_nse_config(n)
    extractor = extractor or NeuralStructureExtractor(3, n.mid_channels, n.channels)
    head = new_head(n.task, extractor.out_channels, sampling=n.sampling, hidden=n.head_hidden)
    per_image = n.anchors_per_image if n.task == "contrastive" else n.puzzles_per_image
    return make_task(extractor, head, sampling=n.sampling, tau=n.tau, per_image=per_image)


def epoch_schedule(
    dataset_length: int,
    batch_size: int,
    epochs: int,
    step_epochs: int,
    iterations: int | None = None,
) -> tuple[int, list[int]]:
    """Iterations and learning-rate milestones of an epoch-based schedule.

    Args:
        dataset_length: items per epoch.
        batch_size: global batch.
        epochs: training length (ignored when ``iterations`` is given).
        step_epochs: decay the learning rate every this many epochs.
        iterations: a training length in iterations that overrides ``epochs``; the decays then
            still come every ``step_epochs`` epochs over the whole of it (not only over the first
            ``epochs`` epochs).

    Returns:
        ``(iterations, milestones)``.
    """
    per_epoch = max(1, math.ceil(dataset_length / batch_size))
    total = epochs * per_epoch if iterations is None else iterations
    step = max(1, step_epochs) * per_epoch
    milestones = [k * step for k in range(1, total // step + 1)]
    return total, [m for m in milestones if m < total]


def run_data_path(run: Path) -> Path | None:
    """The training data recorded in a run folder's ``config.toml`` (None when there is none):
    what the evaluation of an NSE re-fits its heads on by default."""
    config = RunFolder(run).config
    if not config.is_file():
        return None
    stored = TrainConfig.from_dict(load_toml(config)).data.path
    return Path(stored) if stored else None


class EpochSchedule:
    """The resolution hook of an NSE run (:data:`spsr.train.resolve.ResolveHook`).

    The papers give the NSE's learning-rate decay in epochs (TPAMI 2021 §5.1: × 0.2 every 20
    epochs for contrastive prediction, every 30 for jigsaw; no training length: 60 and 90 epochs,
    three decays each, are spsr's choice), so the run's length
    depends on its data: the hook builds the crop dataset and sets ``run.iterations`` and
    ``optim.milestones`` from ``nse.epochs`` / ``nse.lr_step_epochs``, unless those keys were
    given explicitly. The dataset is kept (:meth:`dataset_for`) for the training itself.
    """

    def __init__(self) -> None:
        self.dataset: Any = None

    def dataset_for(self, cfg: TrainConfig) -> Any:
        """The run's crop dataset (built once).

        Raises:
            ConfigError: no training data, a bad ``[nse]`` section, or no usable image.
        """
        if self.dataset is None:
            from spsr.nse.data import NSECropDataset

            if not cfg.data.path:
                raise ConfigError("no training data: give a folder of images (or a store of large patches)")
            n: NSEConfig = cfg.section("nse")
            check_nse_config(n)
            augment = n.augment if cfg.data.augment else "none"
            self.dataset = NSECropDataset(cfg.data.path, n.crop, augment, n.crops_per_image)
        return self.dataset

    def __call__(self, cfg: TrainConfig, explicit: frozenset[str]) -> None:
        if cfg.stage != "nse":
            return
        n: NSEConfig = cfg.section("nse")
        given = cfg.run.iterations if "run.iterations" in explicit else None
        total, steps = epoch_schedule(
            len(self.dataset_for(cfg)), cfg.data.batch_size, n.epochs, n.lr_step_epochs, given
        )
        if "run.iterations" not in explicit:
            cfg.run.iterations = total
        if "optim.milestones" not in explicit:
            cfg.optim.milestones = steps


class NSEStage(Stage):
    """Trains ``task`` (extractor + head) on the pretext task of the ``[nse]`` section."""

    def __init__(self, cfg: TrainConfig, rt: Runtime) -> None:
        super().__init__(cfg, rt)
        self.n: NSEConfig = cfg.section("nse")
        shape = rt.data_shapes.get("image") or rt.data_shapes.get("hr")
        if not shape:
            raise ConfigError("the NSE stage needs image crops ('image' or 'hr') in its data")
        task = build_task(self.n)
        self.task = self.add_network("task", task)
        opt = make_adam(task.parameters(), cfg.optim, cfg.optim.lr_g)
        self.add_optimizer("task", opt, make_multistep(opt, cfg.optim))
        check_crop(min(shape[-2:]), self.n.task, self.n.sampling)  # the data's crops, not nse.crop

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        images = batch["image"] if "image" in batch else batch["hr"]
        with self.rt.autocast():
            result = self.task(images)
        self.rt.optimize(result.loss, "task")
        values = {"nse/loss": float(result.loss.detach()), "nse/accuracy": result.accuracy}
        if self.n.task == "contrastive":
            values["nse/negatives"] = result.mean_negatives
        return values

    def _task(self) -> PretextTask:
        """The task module registered as ``task`` (built by :func:`make_task`)."""
        return cast(PretextTask, self.module("task"))

    def initialize(self, source: str) -> list[str]:
        """``--init``: start from the extractor of another NSE run (or ``nse.safetensors``)."""
        extractor = self._task().extractor
        loaded = load_nse(source)
        if loaded.config() != extractor.config():
            raise ConfigError(
                f"--init {source}: an NSE of {loaded.config()} does not fit this run's "
                f"{extractor.config()}"
            )
        extractor.load_state_dict(loaded.state_dict())
        return [f"extractor.{k}" for k in loaded.state_dict()]

    def save_artifacts(self, run_dir: Path, iteration: int, provenance: dict[str, Any]) -> None:
        task = self._task()
        n = self.n
        meta = {"task": n.task, "iteration": str(iteration), "tau": str(n.tau), "crop": str(n.crop),
                "provenance": json.dumps(provenance, sort_keys=True, default=str)}
        if n.task == "contrastive":
            meta["sampling"] = n.sampling
        save_nse(run_dir / NSE_FILE, task.extractor, meta)
        save_head(run_dir / NSE_HEAD_FILE, task_head(task), {**meta, "hidden": str(n.head_hidden)})


register_stage("nse", NSEStage)
