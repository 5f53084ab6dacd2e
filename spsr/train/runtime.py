"""What a training stage sees of the engine: its networks, optimizers and the step helpers.

A :class:`Runtime` is created by the engine and handed to the stage. The stage registers its
networks and optimizers on it (through :class:`spsr.train.stage.Stage`), and in ``train_step``
uses :meth:`Runtime.autocast` around forward passes and :meth:`Runtime.optimize` for every
optimizer step. Everything registered here is checkpointed, restored on resume, moved to the
device, put in channels-last format and wrapped in DistributedDataParallel by the engine's rules.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from spsr.train.config import TrainConfig
from spsr.train.distributed import DistContext, all_true


def resolve_amp(mode: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype (None: fp32) and whether a GradScaler is needed (fp16).

    The dtype is decided as for inference (:func:`spsr.infer.precision.compute_dtype`): ``auto``
    is bf16 on CUDA GPUs that support it, else fp16 with a scaler; on the CPU bf16 where it has
    native bf16 instructions (AVX512-BF16 / AMX), else fp32. ``fp16`` is CUDA only.
    """
    from spsr.infer.precision import compute_dtype

    dtype = compute_dtype(mode, device, training=True)
    if dtype == torch.float32:
        return None, False
    return dtype, dtype == torch.float16


def resolve_channels_last(mode: str, amp_dtype: torch.dtype | None, device: torch.device) -> bool:
    """``on`` / ``off``, or ``auto``: on with autocast, on CUDA, and in fp32 on AVX2-class CPUs.

    Measured for a full SPSR-G training step (``tests/benchmarks/bench_train.py``) on a 2-core
    AVX512-BF16 CPU: bf16 1.6× faster with channels-last, fp32 1.2× slower; the same CPU with
    oneDNN capped to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``): fp32 1.31× faster with channels-last.
    """
    if mode in ("on", "off"):
        return mode == "on"
    if amp_dtype is not None or device.type == "cuda":
        return True
    from spsr.cpu import cpu_is_avx2_class

    return device.type == "cpu" and cpu_is_avx2_class()


@dataclass
class NetworkEntry:
    """A registered network.

    Attributes:
        module: the plain module (its parameters are what optimizers hold).
        wrapped: what to call in ``train_step`` (the DDP wrapper when distributed and trainable).
        trainable: saved in the state and wrapped in DDP; frozen networks are neither.
        export_spec: the ArchSpec when this is the generator written to ``model.safetensors``.
    """

    module: nn.Module
    wrapped: nn.Module
    trainable: bool
    export_spec: Any = None


@dataclass
class Runtime:
    """Engine services for a stage.

    Attributes:
        cfg: the resolved configuration.
        dist: this process's place in the job.
        amp_dtype: autocast dtype (None: fp32).
        use_scaler: fp16 gradient scaling on.
        channels_last: networks and batches in channels-last format.
        data_shapes: ``{"lr": (C, h, w), "hr": (C, H, W)}`` of one training sample.
        iteration: the iteration being run (1-based inside ``train_step``).
        resuming: whether the state will be restored from a checkpoint after the stage is built.
    """

    cfg: TrainConfig
    dist: DistContext
    amp_dtype: torch.dtype | None = None
    use_scaler: bool = False
    channels_last: bool = False
    data_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    iteration: int = 0
    resuming: bool = False
    networks: dict[str, NetworkEntry] = field(default_factory=dict)
    optimizers: dict[str, Optimizer] = field(default_factory=dict)
    schedulers: dict[str, LRScheduler] = field(default_factory=dict)
    scalers: dict[str, torch.amp.GradScaler] = field(default_factory=dict)
    grad_clip: dict[str, float] = field(default_factory=dict)
    nonfinite: list[str] = field(default_factory=list)

    @property
    def device(self) -> torch.device:
        return self.dist.device

    # ------------------------------------------------------------------ registration

    def register_network(
        self,
        name: str,
        module: nn.Module,
        trainable: bool = True,
        export_spec: Any = None,
        find_unused_parameters: bool = False,
    ) -> nn.Module:
        """Move ``module`` to the device, freeze or wrap it, and remember it under ``name``.

        Returns:
            The module to call in ``train_step`` (a DDP wrapper for trainable networks when
            distributed, else the module itself).
        """
        if name in self.networks:
            raise ValueError(f"network {name!r} is registered twice")
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        wrapped: nn.Module = module
        if trainable:
            module.train()
            if self.dist.distributed and any(p.requires_grad for p in module.parameters()):
                wrapped = DistributedDataParallel(
                    module,
                    device_ids=[self.device.index] if self.device.type == "cuda" else None,
                    find_unused_parameters=find_unused_parameters,
                )
        else:
            module.eval().requires_grad_(False)
        self.networks[name] = NetworkEntry(module, wrapped, trainable, export_spec)
        return wrapped

    def register_optimizer(
        self,
        name: str,
        optimizer: Optimizer,
        scheduler: LRScheduler | None = None,
        grad_clip: float = 0.0,
    ) -> Optimizer:
        """Remember an optimizer (and its scheduler, stepped once per iteration) under ``name``."""
        if name in self.optimizers:
            raise ValueError(f"optimizer {name!r} is registered twice")
        self.optimizers[name] = optimizer
        if scheduler is not None:
            self.schedulers[name] = scheduler
        if self.use_scaler:
            self.scalers[name] = torch.amp.GradScaler(self.device.type)
        if grad_clip > 0:
            self.grad_clip[name] = grad_clip
        return optimizer

    def has_export(self) -> bool:
        """Whether a network was registered with an ArchSpec (a generator to save and validate)."""
        return any(entry.export_spec is not None for entry in self.networks.values())

    def export_entry(self) -> tuple[str, NetworkEntry]:
        """The network written to ``model.safetensors`` (the one registered with an ArchSpec)."""
        for name, entry in self.networks.items():
            if entry.export_spec is not None:
                return name, entry
        raise ValueError("the stage registered no network with export_spec (the generator)")

    # ------------------------------------------------------------------ step helpers

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast context for forward passes (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_device(self, batch: Any) -> Any:
        """Move a batch (tensors in dicts/lists) to the device; images go channels-last if set."""
        if isinstance(batch, torch.Tensor):
            t = batch.to(self.device, non_blocking=True)
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            return t
        if isinstance(batch, dict):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    def optimize(
        self,
        loss: torch.Tensor,
        optimizer: str,
        drop_grads: Iterable[nn.Parameter] = (),
    ) -> bool:
        """Backward ``loss`` and step one optimizer, unless the loss is not finite anywhere.

        When the loss is NaN/inf on any process, every process skips this step (no backward, so
        DDP stays in step), the optimizer's gradients are cleared and the iteration is counted as
        non-finite by the engine (warning; stop after ``run.nan_patience`` in a row).

        Args:
            loss: a scalar tensor.
            optimizer: the registered optimizer's name.
            drop_grads: parameters whose gradients are discarded before the step (they keep
                their values and Adam state untouched: how frozen parts are trained around).

        Returns:
            True if the optimizer stepped.
        """
        opt = self.optimizers[optimizer]
        finite = all_true(self.dist, bool(torch.isfinite(loss.detach()).all().item()))
        if not finite:
            opt.zero_grad(set_to_none=True)
            self.nonfinite.append(optimizer)
            return False
        scaler = self.scalers.get(optimizer)
        if scaler is not None:
            scaler.scale(loss).backward()
        else:
            loss.backward()
        for p in drop_grads:
            p.grad = None
        clip = self.grad_clip.get(optimizer, 0.0)
        if clip > 0:
            if scaler is not None:
                scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        return True

    def step_schedulers(self) -> None:
        """Advance every scheduler by one iteration."""
        with warnings.catch_warnings():
            # A skipped (non-finite) step still advances the schedule; torch warns about that order.
            warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*optimizer.step.*")
            for scheduler in self.schedulers.values():
                scheduler.step()

    def learning_rates(self) -> dict[str, float]:
        """Current learning rate of each optimizer (first parameter group)."""
        return {f"lr/{name}": float(opt.param_groups[0]["lr"]) for name, opt in self.optimizers.items()}


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Temporarily stop gradients into the parameters of ``modules`` (restored on exit)."""
    params = [p for m in modules for p in m.parameters()]
    before = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, before, strict=True):
            p.requires_grad_(flag)
