"""Inference: tiled, batched upscaling, the per-file loop of batch commands
(:mod:`spsr.infer.batch`, with :mod:`spsr.infer.files` finding inputs and naming outputs), and
the checkpoint loading it needs (re-exported from :mod:`spsr.checkpoints`).

Names are loaded on first use (PEP 562), so ``spsr.infer.files`` and ``spsr.infer.shards`` import
without PyTorch (the warm start of ``spsr upscale``, :mod:`spsr.lite`, needs none)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spsr.checkpoints import (
        BUILTIN_NAMES,
        BUILTIN_WEIGHTS,
        DEFAULT_WEIGHTS,
        Inspected,
        LoadedModel,
        detect_spec,
        inspect_checkpoint,
        load_model,
        read_checkpoint,
        resolve_weights,
        save_weights,
    )
    from spsr.infer.batch import (
        BatchEvents,
        BatchResult,
        FileInProgress,
        MemoryHints,
        decided_records,
        file_record,
        run_jobs,
    )
    from spsr.infer.files import (
        Job,
        find_inputs,
        pending,
        plan_jobs,
    )
    from spsr.infer.tiled import (
        TiledUpscaler,
        plan_tiles,
        resolve_precision,
    )

_WHERE = {
    "BUILTIN_NAMES": "spsr.checkpoints",
    "BUILTIN_WEIGHTS": "spsr.checkpoints",
    "DEFAULT_WEIGHTS": "spsr.checkpoints",
    "Inspected": "spsr.checkpoints",
    "LoadedModel": "spsr.checkpoints",
    "detect_spec": "spsr.checkpoints",
    "inspect_checkpoint": "spsr.checkpoints",
    "load_model": "spsr.checkpoints",
    "read_checkpoint": "spsr.checkpoints",
    "resolve_weights": "spsr.checkpoints",
    "save_weights": "spsr.checkpoints",
    "BatchEvents": "spsr.infer.batch",
    "BatchResult": "spsr.infer.batch",
    "FileInProgress": "spsr.infer.batch",
    "MemoryHints": "spsr.infer.batch",
    "decided_records": "spsr.infer.batch",
    "file_record": "spsr.infer.batch",
    "run_jobs": "spsr.infer.batch",
    "Job": "spsr.infer.files",
    "find_inputs": "spsr.infer.files",
    "pending": "spsr.infer.files",
    "plan_jobs": "spsr.infer.files",
    "TiledUpscaler": "spsr.infer.tiled",
    "plan_tiles": "spsr.infer.tiled",
    "resolve_precision": "spsr.infer.tiled",
}

__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "BatchEvents",
    "BatchResult",
    "FileInProgress",
    "Inspected",
    "Job",
    "LoadedModel",
    "MemoryHints",
    "TiledUpscaler",
    "decided_records",
    "detect_spec",
    "file_record",
    "find_inputs",
    "inspect_checkpoint",
    "load_model",
    "pending",
    "plan_jobs",
    "plan_tiles",
    "read_checkpoint",
    "resolve_precision",
    "resolve_weights",
    "run_jobs",
    "save_weights",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'spsr.infer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
