"""Run monitors: TensorBoard event files (and optionally Weights & Biases) beside ``log.jsonl``.

A :class:`Monitor` receives, on the main process only (rank 0 under torchrun), every record the
engine writes to ``log.jsonl`` (:mod:`spsr.train.log`) and, at each validation, a few pictures of
fixed validation crops. The engine opens it once the run folder and the starting iteration are
known and closes it when training ends.

:class:`TensorBoardMonitor` writes the event files into the run folder itself, so
``tensorboard --logdir runs/`` lists one run per run folder. Tags:

* every loss term as logged (``g/pixel``, ``g/grad_pixel``, ``d/loss``...), ``lr/<optimizer>``,
  ``speed/it_per_s``, ``train/skipped`` (non-finite steps) at each ``train`` record;
* ``val/psnr``, ``val/ssim`` (and any other numeric score) and ``val/seconds`` at each validation;
* images ``val/<name>`` (LR nearest-upscaled | SR | HR of a fixed centre crop) and, for SPSR
  generators, ``gradient/<name>`` (M(LR)↑ | gradient branch | M(SR) | M(HR), one scale).

A resumed run keeps *one* event file without duplicated steps: the earlier session's events up
to the resumed iteration are copied into the new session's file (with their wall times) and the
older files are deleted, so anything logged after the last checkpoint of the interrupted session
(which the resumed run repeats) is dropped, as ``SummaryWriter(purge_step=...)`` would have
TensorBoard do, but for every reader of the file.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spsr.errors import ConfigError

EVENT_GLOB = "events.out.tfevents.*"

#: Record keys that are bookkeeping, not curves.
_NOT_SCALARS = {"kind", "time", "iteration", "eta_s", "best", "protocol", "images", "epoch"}


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package (the ``spsr[tensorboard]`` extra) is importable."""
    return importlib.util.find_spec("tensorboard") is not None


def scalar_values(record: Mapping[str, Any]) -> dict[str, float]:
    """The tag → value pairs a ``train`` or ``val`` record contributes to the curves."""
    kind = record.get("kind")
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if kind == "train":
            if key == "it_per_s":
                out["speed/it_per_s"] = float(value)
            elif "/" in key:
                out[key] = float(value)
            else:
                out[f"train/{key}"] = float(value)
        elif kind == "val":
            out[f"val/{key}"] = float(value)
    return out


class Monitor:
    """Receives a run's log records and validation pictures (main process only); does nothing."""

    #: Whether :meth:`images` should be fed (the engine renders the pictures only then).
    wants_images = False

    def open(self, run_dir: Path, first: int, resumed: bool, config: Mapping[str, Any]) -> None:
        """The run starts (``resumed``: continues) after iteration ``first``."""

    def record(self, record: Mapping[str, Any]) -> None:
        """A record was appended to ``log.jsonl``."""

    def images(self, iteration: int, pictures: Mapping[str, np.ndarray]) -> None:
        """Validation pictures (tag → ``(H, W, 3)`` uint8) at ``iteration``."""

    def close(self) -> None:
        """Training ended (also after an error)."""


class TensorBoardMonitor(Monitor):
    """TensorBoard event files in the run folder (see the module docstring).

    Args:
        flush_secs: how often pending events reach the file at the latest (every validation and
            the end of the run also flush).
    """

    wants_images = True

    def __init__(self, flush_secs: int = 30) -> None:
        if not tensorboard_available():
            raise ConfigError(
                "--tensorboard needs the tensorboard package: pip install 'spsr[tensorboard]' "
                "(or train with --no-tensorboard)"
            )
        self.flush_secs = flush_secs
        self.writer: Any = None

    def open(self, run_dir: Path, first: int, resumed: bool, config: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        earlier = sorted(run_dir.glob(EVENT_GLOB))
        self.writer = SummaryWriter(log_dir=str(run_dir), flush_secs=self.flush_secs)
        if resumed and earlier:
            self._carry_over(earlier, first)
        for path in earlier:  # this session's file is a new name, not among them
            path.unlink(missing_ok=True)

    def _carry_over(self, files: list[Path], first: int) -> None:
        """Copy the summaries of earlier sessions at steps ``<= first`` into this session's file
        (exact duplicates, left by a session killed between copy and clean-up, once). Events are
        copied as stored (the legacy loader does not migrate them to newer summary forms); a torn
        record at the end of a killed session's file ends its reading."""
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

        seen: set[bytes] = set()
        for path in files:
            for event in LegacyEventFileLoader(str(path)).Load():
                if not event.HasField("summary") or event.step > first:
                    continue
                key = event.SerializeToString()
                if key in seen:
                    continue
                seen.add(key)
                self.writer.file_writer.add_event(event)
        self.writer.flush()

    def record(self, record: Mapping[str, Any]) -> None:
        if self.writer is None or record.get("kind") not in ("train", "val"):
            return
        step = int(record.get("iteration", 0))
        wall = record.get("time")
        for tag, value in scalar_values(record).items():
            self.writer.add_scalar(tag, value, step, walltime=wall)
        if record.get("kind") == "val":
            self.writer.flush()

    def images(self, iteration: int, pictures: Mapping[str, np.ndarray]) -> None:
        if self.writer is None:
            return
        for tag, picture in pictures.items():
            self.writer.add_image(tag, picture, iteration, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbMonitor(Monitor):
    """Weights & Biases, offline unless ``WANDB_MODE`` says otherwise (``wandb sync`` uploads).

    The run's files go to ``RUN/wandb``; its id is the run folder's, so a resumed run continues
    the same W&B run.

    Args:
        project: the W&B project name.
    """

    wants_images = True

    def __init__(self, project: str) -> None:
        if importlib.util.find_spec("wandb") is None:
            raise ConfigError(
                "--wandb needs the wandb package: pip install wandb (or leave --wandb out)"
            )
        self.project = project
        self.run: Any = None
        self._wandb: Any = None

    def open(self, run_dir: Path, first: int, resumed: bool, config: Mapping[str, Any]) -> None:
        import hashlib

        import wandb

        self._wandb = wandb
        (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
        run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(
            project=self.project, name=run_dir.name, id=run_id, resume="allow",
            dir=str(run_dir), config=dict(config),
            mode=os.environ.get("WANDB_MODE", "offline"),
        )

    def record(self, record: Mapping[str, Any]) -> None:
        if self.run is None or record.get("kind") not in ("train", "val"):
            return
        self.run.log(scalar_values(record), step=int(record.get("iteration", 0)))

    def images(self, iteration: int, pictures: Mapping[str, np.ndarray]) -> None:
        if self.run is None:
            return
        self.run.log({tag: self._wandb.Image(p) for tag, p in pictures.items()}, step=iteration)

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def make_monitors(tensorboard: bool | None, wandb_project: str | None) -> list[Monitor]:
    """The monitors the ``--tensorboard/--no-tensorboard`` and ``--wandb`` options ask for.

    Args:
        tensorboard: True: required (an error without the package); None: on when the package
            is importable; False: off.
        wandb_project: a W&B project, or None.
    """
    monitors: list[Monitor] = []
    if tensorboard or (tensorboard is None and tensorboard_available()):
        monitors.append(TensorBoardMonitor())
    if wandb_project:
        monitors.append(WandbMonitor(wandb_project))
    return monitors
