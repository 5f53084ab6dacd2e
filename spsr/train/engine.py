"""The one training engine every stage runs on (PSNR pre-training, GAN variants, NSE pretext tasks...).

The engine owns the loop and everything around it: the iteration counter, the reproducible batch
stream (:mod:`spsr.train.batches`), checkpoints (every ``run.checkpoint_every`` iterations and
every ``run.checkpoint_minutes``) and complete resume (:mod:`spsr.train.state`), stop signals
(Ctrl-C, SIGTERM, SIGUSR1: :mod:`spsr.train.signals`), non-finite losses, EMA of the generator,
validation with ``spsr eval``'s conventions (:mod:`spsr.train.validate`), the JSON-lines log and
progress (:mod:`spsr.train.log`), autocast precision and DistributedDataParallel
(:mod:`spsr.train.distributed`). A *stage* only says which networks and optimizers exist and what
one iteration does.

Adding a stage or a variant (without touching this file)
--------------------------------------------------------

1. Subclass :class:`spsr.train.stage.Stage` in your own module, e.g. ``spsr/train/stages/nse.py``::

       class NSEStage(Stage):
           def __init__(self, cfg, rt):
               super().__init__(cfg, rt)
               net = NSE(...)
               # trainable networks are checkpointed, restored, and DDP-wrapped when distributed;
               # export_spec=ArchSpec marks a generator: written to model.safetensors, validated,
               # averaged by EMA. A stage without one (an NSE pretext task) writes its own files
               # in save_artifacts() and gets no validation.
               self.F = self.add_network("F", net)
               self.add_optimizer("F", make_adam(net.parameters(), cfg.optim, cfg.optim.lr_g),
                                  make_multistep(...))          # scheduler stepped every iteration
               self.vgg = self.add_network("vgg", extractor, trainable=False)   # frozen helper

           def train_step(self, batch):                 # batch: dict of tensors on the device
               with self.rt.autocast():                 # bf16/fp16 autocast when enabled
                   loss = ...
               self.rt.optimize(loss, "F")              # backward + step, NaN-safe, DDP-safe, AMP scaler
               return {"f/loss": loss.item()}           # logged (averaged over processes)

   Rules: call networks through the object ``add_network`` returned (the DDP wrapper) for the
   forward whose backward steps that network's optimizer, and through ``self.module(name)`` for
   forwards that must not synchronise (e.g. the discriminator inside the generator's loss; wrap
   it in :func:`spsr.train.runtime.frozen` so no gradient reaches it). Return the same keys every
   iteration. Randomness inside ``train_step`` must come from torch/numpy/python global
   generators (they are checkpointed) or from the batch.

2. Register it in the same module, and its variants in :mod:`spsr.variant_catalog` (built-in
   stages: also name the module in its ``STAGE_MODULES``) or, from a plugin, at run time::

       register_stage("nse", NSEStage)
       register_variant(Variant("contrastive", "nse", "NSE by contrastive prediction", configure_fn))

   ``configure_fn(cfg)`` sets the preset's values (loss weights, learning rates, iterations).
   Stage-specific settings get their own TOML section with
   :func:`spsr.train.config.register_section` (``cfg.section("nse")``).

3. Optional hooks: ``initialize(source)`` (``--init``; default: :func:`spsr.train.init_from.load_init` on
   the exported generator), ``extra_state()`` / ``load_extra_state()`` for more checkpointed
   state, ``save_artifacts(run_dir, iteration, provenance)`` to write files at every checkpoint (rank 0).
   A stage that loads model files (ImageNet weights...) declares them in the classmethod
   ``needs(cfg)`` (:meth:`spsr.train.stage.Stage.needs`), which ``spsr fetch`` and ``spsr ablate`` read.

Running: ``Trainer(cfg, run_dir).run()`` or :func:`train`. The command line does exactly that,
with :class:`spsr.train.log.ConsoleReporter` for progress.
"""

from __future__ import annotations

import os
import platform
import random
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from spsr.atomic import atomic_path, write_text_atomic
from spsr.errors import CheckpointError, ConfigError, MissingWeightsError, SpsrError, WriteError
from spsr.run_folder import RunFolder
from spsr.train import distributed as D
from spsr.train.batches import BatchStream, seeded_global_rngs
from spsr.train.config import TrainConfig, dump_toml, ensure_validated
from spsr.train.ema import ModelEMA
from spsr.train.log import JsonLinesLog, Reporter, read_log
from spsr.train.moa import BatchMoA
from spsr.train.monitor import Monitor
from spsr.train.runtime import Runtime, resolve_amp, resolve_channels_last
from spsr.train.signals import StopSignals
from spsr.train.stage import Stage
from spsr.train.state import (
    capture_rng,
    load_state,
    prune_numbered_states,
    restore_rng,
    save_state,
)
from spsr.train.threads import apply_plan, plan_threads
from spsr.train.validate import (
    ValImage,
    evaluate_generator,
    load_val_folder,
    load_val_store,
    validation_pictures,
)
from spsr.train.variants import get_stage


class TrainingDivergedError(SpsrError):
    """The loss stayed non-finite for ``run.nan_patience`` iterations in a row."""


@dataclass
class TrainResult:
    """How a training session ended.

    Attributes:
        run_dir: the run folder.
        iteration: iterations done in total (including earlier sessions).
        reason: ``finished``, or the signal that stopped it (``SIGINT``, ``SIGTERM``, ``SIGUSR1``).
        best: the best validation record (``psnr``, ``ssim``, ``iteration``) or None.
    """

    run_dir: Path
    iteration: int
    reason: str
    best: dict[str, Any] | None = None

    @property
    def interrupted(self) -> bool:
        return self.reason != "finished"


Callback = Callable[["Trainer"], None]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder holds anything worth keeping: a state to resume or exported weights."""
    return RunFolder(run_dir).holds_checkpoint()


def clean_interrupted_saves(run_dir: Path) -> list[Path]:
    """Delete the temporary files of saves that were killed midway (``*.tmp`` in RUN and RUN/state).

    Every file of a run folder is written as a temporary file, then renamed; a ``.tmp`` left
    behind is never part of a finished save. Returns what was deleted.
    """
    removed = RunFolder(run_dir).temporary_files()
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


def run_folder_problem(run_dir: Path, resume: bool) -> str | None:
    """Why ``run_dir`` cannot be used (None when it can).

    A folder whose run never reached its first checkpoint (it failed validation, or was killed
    early) holds nothing to resume; it is reused by a fresh run, which replaces its log.
    """
    if resume:
        last = RunFolder(run_dir).last_state
        if not last.is_file():
            why = f"nothing to resume: {last} does not exist"
            if run_dir.is_dir() and not has_checkpoint(run_dir):
                why += " (the run stopped before its first checkpoint; start it again without --resume)"
            return why
        return None
    if run_dir.exists() and not run_dir.is_dir():
        return f"{run_dir} exists and is not a folder"
    if run_dir.is_dir() and has_checkpoint(run_dir):
        return f"{run_dir} already holds a run; continue it with --resume or choose another folder"
    return None


class Trainer:
    """Runs one stage to ``run.iterations`` in a run folder.

    Args:
        cfg: the resolved configuration (validated here).
        run_dir: the run folder (created; must not hold a run unless ``resume``).
        resume: continue from ``run_dir/state/last.pt``.
        dataset: training dataset (default: :class:`spsr.data.dataset.PatchDataset` on ``data.path``).
        val_images: validation pairs (default: ``data.val_dir``, else the store's ``val`` group).
        reporter: progress display (default: silent).
        callbacks: called as ``fn(trainer)`` after every iteration (e.g. to inspect or stop).
        command: the command line recorded in the weights' provenance (default: ``sys.argv``).
        clock: monotonic seconds, read for ``run.checkpoint_minutes`` (default: ``time.monotonic``).
        monitors: run monitors fed every log record and validation pictures on the main process
            (:mod:`spsr.train.monitor`: TensorBoard, W&B); closed when the run ends.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | os.PathLike[str],
        resume: bool = False,
        dataset: Dataset | None = None,
        val_images: Sequence[ValImage] | None = None,
        reporter: Reporter | None = None,
        callbacks: Sequence[Callback] = (),
        command: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        monitors: Sequence[Monitor] = (),
    ) -> None:
        self.cfg = ensure_validated(cfg)  # resolve_run validated it; a hand-made one is checked
        self.run_dir = Path(run_dir)
        self.folder = RunFolder(self.run_dir)
        self.resume = resume
        self.dataset = dataset
        self.val_images = list(val_images) if val_images is not None else None
        self.reporter = reporter or Reporter()
        self.callbacks = list(callbacks)
        self.monitors = list(monitors)
        self.iteration = 0
        self.best: dict[str, Any] | None = None
        self.nonfinite_streak = 0
        self._stop = StopSignals()
        self.clock = clock
        self._saved_at = 0.0  # clock() at the last checkpoint (or the loop's start)
        self._acc: dict[str, float] = {}
        self._acc_n = 0
        self._skipped = 0
        self._last_log = (0, time.monotonic())
        # Provenance, carried over resumes: every session's command line and the loop's wall time.
        self.command = command if command is not None else _command_line()
        self.commands: list[str] = []
        self.train_seconds = 0.0
        self._clock = time.monotonic()
        # Set up in run():
        self.dist: D.DistContext
        self.rt: Runtime
        self.stage: Stage
        self.ema: ModelEMA | None = None
        self.moa: BatchMoA | None = None
        self.stream: BatchStream
        self.log: JsonLinesLog

    # ------------------------------------------------------------------ public

    def run(self) -> TrainResult:
        """Train until ``run.iterations`` or a stop signal; returns how it ended."""
        owns_group = not torch.distributed.is_initialized()
        self.dist = D.init_distributed(self.cfg.run.device)
        kernels = _KernelSettings.apply(self.dist.device, self.cfg.run.deterministic)
        try:
            with self._stop:  # a signal during the set-up stops after the first iteration
                self._setup()
                return self._loop()
        finally:
            kernels.restore()
            self.reporter.close()
            for monitor in self.monitors:
                monitor.close()
            for name in ("stream", "log"):
                if hasattr(self, name):
                    getattr(self, name).close()
            if owns_group:
                D.shutdown(self.dist)

    @property
    def generator(self) -> torch.nn.Module:
        """The generator's plain module (what is exported and validated, before EMA)."""
        return self.rt.export_entry()[1].module

    def request_stop(self, reason: str = "SIGTERM") -> None:
        """Stop after the current iteration, saving a resumable state (as a signal would)."""
        self._stop.request(reason)

    # ------------------------------------------------------------------ set-up

    def _setup(self) -> None:
        cfg, dist = self.cfg, self.dist
        if dist.is_main:
            clean_interrupted_saves(self.run_dir)
        problem = run_folder_problem(self.run_dir, self.resume) if dist.is_main else None
        problem = D.broadcast_object(dist, problem)
        if problem:
            raise (CheckpointError if self.resume else ConfigError)(problem)
        dataset = self.dataset if self.dataset is not None else self._default_dataset()
        # Preflight: every weights file the stage will load, fetched (or all missing ones reported)
        # before the run folder is touched; the main process fetches, the others wait for it.
        missing = _preflight_weights(cfg) if dist.is_main else None
        missing = D.broadcast_object(dist, missing)
        if missing:
            raise MissingWeightsError(missing)
        if dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        D.barrier(dist)

        data_scale = getattr(dataset, "scale", cfg.model.scale)
        if data_scale != cfg.model.scale:
            raise ConfigError(f"the training data is x{data_scale} but the model is x{cfg.model.scale}")
        with seeded_global_rngs(0):
            sample = dataset[0]
        self.threads = plan_threads(cfg.data.workers, _local_processes(dist.world_size),
                                    previous=self._started_threads() if self.resume else None)
        apply_plan(self.threads)
        amp_dtype, use_scaler = resolve_amp(cfg.run.amp, dist.device)
        self.rt = Runtime(
            cfg=cfg, dist=dist, amp_dtype=amp_dtype, use_scaler=use_scaler,
            channels_last=resolve_channels_last(cfg.run.channels_last, amp_dtype, dist.device),
            data_shapes={k: tuple(v.shape) for k, v in sample.items() if isinstance(v, torch.Tensor)},
            resuming=self.resume,
        )
        seed_everything(cfg.run.seed)  # same initial weights on every process
        self.stage = cast("Stage", get_stage(cfg.stage)(cfg, self.rt))  # factories build Stages
        self.has_generator = self.rt.has_export()
        if not self.resume and cfg.run.init:
            self.stage.initialize(cfg.run.init)
            for line in getattr(self.stage, "init_warnings", []):
                self.reporter.warn(f"--init {line}")
        if cfg.run.ema > 0:
            if not self.has_generator:
                raise ConfigError("run.ema averages a generator, and this stage trains none")
            self.ema = ModelEMA(self.generator, cfg.run.ema)
        if cfg.data.moa:  # see spsr.train.moa
            upsample = self.stage.takes_upsampled_lr
            self.moa = BatchMoA.from_config(cfg, dist.rank, upsample_lr=upsample)
        self.stream = BatchStream(
            dataset, cfg.data.batch_size, cfg.run.seed, dist.rank, dist.world_size,
            workers=cfg.data.workers, pin_memory=dist.device.type == "cuda",
        )
        if dist.is_main and self.val_images is None and self.has_generator:
            self.val_images = self._default_val_images(dataset)
        if dist.is_main and not self.resume:
            self.folder.log.unlink(missing_ok=True)  # of a run that never checkpointed
        self.log = JsonLinesLog(self.folder.log, enabled=dist.is_main)
        self.has_val = self.has_generator and bool(D.broadcast_object(dist, bool(self.val_images)))

        if self.resume:
            self._restore(load_state(self.folder.last_state))
        else:
            seed_everything(cfg.run.seed + dist.rank)
        self.commands.append(self.command)
        if dist.is_main:
            write_text_atomic(self.folder.config, dump_toml(cfg))
            for monitor in self.monitors:
                monitor.open(self.run_dir, self.iteration, self.resume, cfg.to_dict())
        else:
            self.monitors = []  # rank 0 only
        self._write(
            kind="start", iteration=self.iteration, iterations=cfg.run.iterations,
            stage=cfg.stage, variant=cfg.variant, world_size=dist.world_size, backend=dist.backend,
            batch_per_process=self.stream.local_batch, device=str(dist.device),
            amp=str(amp_dtype).replace("torch.", "") if amp_dtype else "fp32",
            resumed=self.resume, init=cfg.run.init if not self.resume else "",
            threads=self.threads.main, data_workers=cfg.data.workers,
        )
        if dist.is_main:
            self.reporter.note(self.threads.describe())

    def _started_threads(self) -> int | None:
        """The thread count of the run's first session (its first ``start`` record), if logged."""
        try:
            starts = read_log(self.run_dir, "start")
        except (OSError, ValueError):
            return None
        value = starts[0].get("threads") if starts else None
        return int(value) if isinstance(value, int) else None

    def _default_dataset(self) -> Dataset:
        if not self.cfg.data.path:
            raise ConfigError("no training data: give the patch store made by spsr prepare-data")
        from spsr.data.dataset import PatchDataset, training_lr_crop

        d = self.cfg.data
        return PatchDataset(d.path, lr_crop=training_lr_crop(d.path, d.lr_patch), augment=d.augment)

    def _default_val_images(self, dataset: Dataset) -> list[ValImage]:
        d = self.cfg.data
        if d.val_dir:
            return load_val_folder(d.val_dir, self.cfg.model.scale, d.val_limit)
        path = getattr(dataset, "path", None)
        if path is not None and d.path:
            from spsr.data.dataset import ValImageDataset

            if len(ValImageDataset(path)):
                return load_val_store(path, d.val_limit)
        return []

    # ------------------------------------------------------------------ loop

    def _loop(self) -> TrainResult:
        cfg, rt = self.cfg, self.rt
        total = cfg.run.iterations
        self.reporter.start(total, self.iteration, f"{cfg.stage}/{cfg.variant}")
        self._last_log = (self.iteration, time.monotonic())
        self._clock = time.monotonic()
        self._saved_at = self.clock()
        reason = "finished"
        while self.iteration < total:
            batch = rt.to_device(next(self.stream))
            rt.iteration = self.iteration + 1
            if self.moa is not None:
                batch = self.moa(batch, rt.iteration)
            rt.nonfinite.clear()
            values = self.stage.train_step(batch)
            self.iteration += 1
            rt.step_schedulers()
            if self.ema is not None:
                self.ema.update(self.generator)
            self._account(values)
            self.reporter.step(self.iteration, values)
            for callback in self.callbacks:
                callback(self)
            stop, timed = self._decide()
            it = self.iteration
            if it % cfg.run.log_every == 0 or it == total or stop:
                self._log_train()
            if not stop and self.has_val and (it % cfg.data.val_every == 0 or it == total):
                self._validate()
            if it % cfg.run.checkpoint_every == 0 or it == total or stop:
                self._checkpoint()
            elif timed:
                self._checkpoint(keep=False)
            if stop and it < total:  # a signal during the last iteration: the run is finished
                reason = self._stop_reason()
                break
        self._write(kind="end", iteration=self.iteration, reason=reason, best=self.best)
        return TrainResult(self.run_dir, self.iteration, reason, self.best)

    def _decide(self) -> tuple[bool, bool]:
        """Whether to stop, and whether a timed checkpoint is due, the same on every process (one
        collective per iteration): any process's stop request, rank 0's clock."""
        minutes = self.cfg.run.checkpoint_minutes
        due = self.dist.is_main and minutes > 0 and self.clock() - self._saved_at >= 60.0 * minutes
        stop, due = D.any_true(self.dist, self._stop.reason is not None, due)
        return stop, due

    def _stop_reason(self) -> str:
        """What stopped the run: the first process's (in rank order) that was asked to stop."""
        reasons = D.gather_objects(self.dist, self._stop.reason)
        return next((r for r in reasons if r is not None), "SIGTERM")

    def _account(self, values: dict[str, float]) -> None:
        if self.rt.nonfinite:
            self.nonfinite_streak += 1
            self._skipped += 1
            message = (
                f"non-finite loss at iteration {self.iteration} ({', '.join(self.rt.nonfinite)}); "
                f"step skipped ({self.nonfinite_streak} in a row)"
            )
            self.reporter.warn(message)
            self._write(kind="warning", iteration=self.iteration, message=message)
            if self.nonfinite_streak >= self.cfg.run.nan_patience:
                self._write(kind="end", iteration=self.iteration, reason="diverged")
                raise TrainingDivergedError(
                    f"training diverged: the loss was not finite for {self.nonfinite_streak} "
                    f"iterations in a row (up to iteration {self.iteration}); the last checkpoint "
                    f"in {self.folder.state_dir} is intact. Try a lower learning rate or --amp off"
                )
            return
        self.nonfinite_streak = 0
        for key, value in values.items():
            self._acc[key] = self._acc.get(key, 0.0) + float(value)
        self._acc_n += 1

    def _log_train(self) -> None:
        means = {k: v / self._acc_n for k, v in sorted(self._acc.items())} if self._acc_n else {}
        means = D.mean_dict(self.dist, means)
        it0, t0 = self._last_log
        now = time.monotonic()
        rate = (self.iteration - it0) / max(now - t0, 1e-9)
        eta = (self.cfg.run.iterations - self.iteration) / rate if rate > 0 else float("nan")
        self._write(
            kind="train", iteration=self.iteration, epoch=self.stream.epoch, **means,
            **self.rt.learning_rates(), it_per_s=round(rate, 4), eta_s=round(eta, 1),
            skipped=self._skipped,
        )
        self._acc, self._acc_n, self._skipped = {}, 0, 0
        self._last_log = (self.iteration, now)

    def _export_module(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def _validate(self) -> None:
        if self.dist.is_main:
            assert self.val_images
            d = self.cfg.data
            metrics = evaluate_generator(
                self._export_module(), self.val_images, self.cfg.model.scale, self.dist.device,
                tile=d.val_tile, precision=d.val_precision, protocol=d.val_protocol,
            )
            is_best = self.best is None or metrics["psnr"] > self.best["psnr"]
            if is_best:
                self.best = {"psnr": metrics["psnr"], "ssim": metrics["ssim"], "iteration": self.iteration}
                self._save_weights(self.folder.best)
            self._write(kind="val", iteration=self.iteration, **metrics, best=is_best)
            if any(m.wants_images for m in self.monitors):
                pictures = validation_pictures(
                    self._export_module(), self.val_images, self.cfg.model.scale, self.dist.device
                )
                for monitor in self.monitors:
                    if monitor.wants_images:
                        monitor.images(self.iteration, pictures)
        D.barrier(self.dist)

    # ------------------------------------------------------------------ checkpoint / resume

    def _save_weights(self, path: Path) -> None:
        from spsr.checkpoints import save_weights

        _, entry = self.rt.export_entry()
        save_weights(path, self._export_module(), entry.export_spec, provenance=self.provenance())

    def provenance(self) -> dict[str, Any]:
        """What the exported weights record of how they were made (JSON-serialisable)."""
        cfg = self.cfg
        return {
            "stage": cfg.stage, "variant": cfg.variant, "iteration": self.iteration,
            "ema": self.ema is not None, "run": self.run_dir.name,
            "commands": list(self.commands),
            "data": Path(cfg.data.path).name if cfg.data.path else "",
            "init": cfg.run.init, "batch_size": cfg.data.batch_size, "lr_patch": cfg.data.lr_patch,
            "train_seconds": round(self._elapsed(), 1),
            "device": f"{self.dist.device.type} ({platform.machine()})",
            "world_size": self.dist.world_size, "torch": torch.__version__,
        }

    def _elapsed(self) -> float:
        """Wall time spent in the loop over all sessions of this run, up to now."""
        now = time.monotonic()
        self.train_seconds += now - self._clock
        self._clock = now
        return self.train_seconds

    def _checkpoint(self, keep: bool = True) -> None:
        """Save the state, the weights and the stage's files (``keep``: also a numbered
        ``state/iter_N.pt`` when ``run.keep_states`` asks for them)."""
        rngs = D.gather_objects(self.dist, capture_rng(self.dist.device))
        if self.dist.is_main:
            rt = self.rt
            payload = {
                "iteration": self.iteration,
                "config": self.cfg.to_dict(),
                "networks": {n: e.module.state_dict() for n, e in rt.networks.items() if e.trainable},
                "optimizers": {n: o.state_dict() for n, o in rt.optimizers.items()},
                "schedulers": {n: s.state_dict() for n, s in rt.schedulers.items()},
                "scalers": {n: s.state_dict() for n, s in rt.scalers.items()},
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "stage": self.stage.extra_state(),
                "data": self.stream.state_dict(),
                "rng": rngs,
                "engine": {
                    "best": self.best, "nonfinite_streak": self.nonfinite_streak,
                    "commands": self.commands, "train_seconds": self._elapsed(),
                },
            }
            try:
                path = save_state(self.folder.last_state, payload)
                if keep and self.cfg.run.keep_states > 0:
                    numbered = self.folder.numbered_state(self.iteration)
                    with atomic_path(numbered) as tmp:
                        shutil.copyfile(path, tmp)
                    prune_numbered_states(self.run_dir, self.cfg.run.keep_states)
                if self.has_generator:
                    self._save_weights(self.folder.model)
                self.stage.save_artifacts(self.run_dir, self.iteration, self.provenance())
                self._write(kind="checkpoint", iteration=self.iteration, path=str(path))
            except WriteError as exc:
                # every file is replaced whole or not at all, so the last good state is intact
                kept = (
                    f"the last saved state in {self.folder.state_dir} is intact"
                    if has_checkpoint(self.run_dir)
                    else "no checkpoint of this run was saved yet"
                )
                raise exc.with_note(
                    f"training stopped at iteration {self.iteration} without its checkpoint; {kept}"
                ) from None
        D.barrier(self.dist)
        self._saved_at = self.clock()

    def _restore(self, state: dict[str, Any]) -> None:
        rt = self.rt
        try:
            for name, entry in rt.networks.items():
                if entry.trainable:
                    entry.module.load_state_dict(state["networks"][name])
            for name, opt in rt.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            for name, sched in rt.schedulers.items():
                sched.load_state_dict(state["schedulers"][name])
            for name, scaler in rt.scalers.items():
                if name in state["scalers"]:
                    scaler.load_state_dict(state["scalers"][name])
            if self.ema is not None:
                if state.get("ema") is None:
                    raise KeyError("ema")
                self.ema.load_state_dict(state["ema"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(
                f"the saved state in {self.run_dir} does not match this configuration ({exc})"
            ) from None
        self.stage.load_extra_state(state.get("stage", {}))
        self.stream.load_state_dict(state["data"])
        self.iteration = int(state["iteration"])
        engine = state.get("engine", {})
        self.best = engine.get("best")
        self.nonfinite_streak = int(engine.get("nonfinite_streak", 0))
        self.commands = [str(c) for c in engine.get("commands", [])]
        self.train_seconds = float(engine.get("train_seconds", 0.0))
        rngs = state.get("rng", [])
        if len(rngs) == self.dist.world_size:
            restore_rng(rngs[self.dist.rank], self.dist.device)
        else:  # a different number of processes: the data stream is still exact, RNG streams are new
            seed_everything(self.cfg.run.seed + self.dist.rank + 1_000_003 * self.iteration)
        if self.iteration >= self.cfg.run.iterations:
            raise ConfigError(
                f"the run is already at iteration {self.iteration} of {self.cfg.run.iterations}; "
                "raise --iterations to train further"
            )

    # ------------------------------------------------------------------ logging

    def _write(self, **record: Any) -> None:
        if self.dist.is_main:
            written = self.log.write(record)
            self.reporter.record(written)
            for monitor in self.monitors:
                monitor.record(written)


@dataclass
class _KernelSettings:
    """The global cuDNN / PyTorch kernel choices a CUDA training sets, and their values before."""

    benchmark: bool
    cudnn_deterministic: bool
    deterministic: bool
    warn_only: bool
    changed: bool = False

    @classmethod
    def apply(cls, device: torch.device, deterministic: bool) -> _KernelSettings:
        """On CUDA: autotuned cuDNN convolutions (fixed patch size), or deterministic kernels."""
        before = cls(torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
                     torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
        if device.type != "cuda":
            return before
        if deterministic:
            # cuBLAS reads this when its handle is created (before the first matrix product).
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        before.changed = True
        return before

    def restore(self) -> None:
        if self.changed:
            torch.backends.cudnn.benchmark = self.benchmark
            torch.backends.cudnn.deterministic = self.cudnn_deterministic
            torch.use_deterministic_algorithms(self.deterministic, warn_only=self.warn_only)


def train(cfg: TrainConfig, run_dir: str | os.PathLike[str], **kwargs: Any) -> TrainResult:
    """``Trainer(cfg, run_dir, **kwargs).run()``."""
    return Trainer(cfg, run_dir, **kwargs).run()


def _preflight_weights(cfg: TrainConfig) -> str | None:
    """Fetch the ImageNet weights ``cfg`` needs (:func:`spsr.train.needs.training_needs`); the message
    listing every file that cannot be had, or None."""
    from spsr.train.needs import training_needs
    from spsr.weights import ensure_files

    try:
        ensure_files(training_needs(cfg))
    except MissingWeightsError as exc:
        return str(exc)
    return None
def _local_processes(world_size: int) -> int:
    """Training processes on this machine: torchrun's ``LOCAL_WORLD_SIZE``, else the world size."""
    value = os.environ.get("LOCAL_WORLD_SIZE", "")
    return int(value) if value.isdigit() and int(value) > 0 else world_size


def _command_line() -> str:
    """This process's command line, with the program as its base name (``spsr train ...``)."""
    argv = list(sys.argv) or ["python"]
    argv[0] = Path(argv[0]).name or argv[0]
    return shlex.join(argv)
