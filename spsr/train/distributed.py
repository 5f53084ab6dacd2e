"""Process-group set-up for ``torchrun`` + DistributedDataParallel, and the few collectives the
engine needs. A single process (no ``torchrun``) is a world of one and every helper is a no-op.

``torchrun --nproc_per_node N -m spsr_cli.app train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins
the group with NCCL on GPUs and gloo on CPUs (also for N = 1, so one GPU checks the NCCL path).
Multi-node works the same way (``--nnodes``, ``--rdzv-endpoint``). Rank 0 alone writes files.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# Validation runs on rank 0 while the others wait at a barrier: allow it to take long.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 writes files).
        world_size: number of processes.
        local_rank: rank on this node (selects the GPU).
        device: the device this process trains on.
        backend: ``nccl``, ``gloo`` or ``none`` (single process).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str = "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """In a process group (DDP, collectives): several processes, or one under ``torchrun``."""
        return self.world_size > 1 or self.backend != "none"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The training device: :func:`spsr.devices.resolve_device` with ``cuda`` → ``cuda:LOCAL_RANK``."""
    from spsr.devices import resolve_device as check_device

    return torch.device(check_device(name, local_rank))


def init_distributed(device_name: str = "auto") -> DistContext:
    """Join the process group when launched by ``torchrun``, else return a world of one.

    Args:
        device_name: the configured device (``auto``, ``cpu``, ``cuda``...).

    Returns:
        The process's :class:`DistContext`.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    # torchrun --nproc_per_node 1 (TORCHELASTIC_RUN_ID set) joins a group of one, so a one-GPU
    # launch runs the same NCCL / DDP code as N GPUs; a plain `spsr train` does not.
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return DistContext(device=device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        bind: dict[str, Any] = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT, **bind
        )
    return DistContext(rank, world, local_rank, device, backend)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (if this process joined one)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_true(ctx: DistContext, flag: bool) -> bool:
    """True when ``flag`` is true on every process."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0.5)


def any_true(ctx: DistContext, *flags: bool) -> tuple[bool, ...]:
    """Each flag: true on at least one process (one collective for them all)."""
    if not ctx.distributed:
        return tuple(bool(f) for f in flags)
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0.5) for v in t.tolist())


def mean_dict(ctx: DistContext, values: dict[str, float]) -> dict[str, float]:
    """Average a dict of floats over the processes (same keys everywhere, sorted order)."""
    if not ctx.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    t /= ctx.world_size
    return dict(zip(keys, t.tolist(), strict=True))


def gather_objects(ctx: DistContext, obj: Any) -> list[Any]:
    """Every process's ``obj`` (picklable), in rank order, on every process."""
    if not ctx.distributed:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
