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

A run keeps *one* event file, also across ``--resume``, without duplicated steps: a resumed run
cuts the file after the last record up to the iteration it resumes from (what the interrupted
session logged after its last checkpoint, which the resumed run repeats, goes, as
``SummaryWriter(purge_step=...)`` would have TensorBoard hide it, but for every reader of the
file) and appends to it. The cut needs no copy: records are in iteration order. A run stopped
by a signal checkpoints where it stops, so its file is only appended to (a running TensorBoard
follows); after a hard kill, a TensorBoard that was reading the file needs a restart.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
import time
from collections.abc import Iterator, Mapping
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


def _frames(path: Path) -> Iterator[tuple[int, bytes]]:
    """The records of an event file as ``(end offset, serialized Event)``, in file order; stops at
    a torn record (the end of a session killed while writing)."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    with open(path, "rb") as fh:
        offset = 0
        while True:
            header = fh.read(12)
            if len(header) < 12:
                return
            if struct.unpack("<I", header[8:])[0] != masked_crc32c(header[:8]):
                return
            (length,) = struct.unpack("<Q", header[:8])
            data = fh.read(length)
            if len(data) < length or len(fh.read(4)) < 4:
                return
            offset += 12 + length + 4
            yield offset, data


def _kept_end(path: Path, first: int) -> int:
    """Where a resumed run cuts its event file: after the last record up to iteration ``first``
    (records are in iteration order: every session appends after the previous one's cut)."""
    from tensorboard.compat.proto.event_pb2 import Event

    kept = 0
    for end, data in _frames(path):
        try:
            event = Event.FromString(data)
        except Exception:  # noqa: BLE001 - any undecodable record ends what can be kept
            break
        if event.HasField("summary") and event.step > first:
            break
        kept = end
    return kept


class TensorBoardMonitor(Monitor):
    """One TensorBoard event file in the run folder (see the module docstring).

    The file is written with TensorBoard's own record format and summaries
    (:class:`tensorboard.summary.writer.record_writer.RecordWriter`,
    :mod:`torch.utils.tensorboard.summary`) and flushed after every record, so a running
    ``tensorboard`` sees each point as it is logged.
    """

    wants_images = True

    def __init__(self) -> None:
        if not tensorboard_available():
            raise ConfigError(
                "--tensorboard needs the tensorboard package: pip install 'spsr[tensorboard]' "
                "(or train with --no-tensorboard)"
            )
        self.path: Path | None = None
        self._fh: Any = None
        self._records: Any = None

    def open(self, run_dir: Path, first: int, resumed: bool, config: Mapping[str, Any]) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        files = sorted(run_dir.glob(EVENT_GLOB))
        fresh = not (resumed and files)
        if fresh:  # a new run: what a run that never checkpointed left goes
            for path in files:
                path.unlink(missing_ok=True)
            self.path = run_dir / f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
        else:  # continue the file, cut after iteration `first` (every file there, if several)
            for path in files:
                os.truncate(path, _kept_end(path, first))
            self.path = files[-1]
        self._fh = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._records = RecordWriter(self._fh)
        if fresh:
            self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())

    def _summary(self, step: int, summary: Any, wall: float | None = None) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._write(Event(wall_time=wall if wall is not None else time.time(), step=step,
                          summary=summary))

    def record(self, record: Mapping[str, Any]) -> None:
        if self._records is None or record.get("kind") not in ("train", "val"):
            return
        from torch.utils.tensorboard.summary import scalar

        step = int(record.get("iteration", 0))
        wall = record.get("time")
        for tag, value in scalar_values(record).items():
            self._summary(step, scalar(tag, value), wall)
        self._records.flush()

    def images(self, iteration: int, pictures: Mapping[str, np.ndarray]) -> None:
        if self._records is None:
            return
        from torch.utils.tensorboard.summary import image

        for tag, picture in pictures.items():
            self._summary(iteration, image(tag, picture, dataformats="HWC"))
        self._records.flush()

    def close(self) -> None:
        if self._records is not None:
            self._records.close()
            self._records = self._fh = None


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
