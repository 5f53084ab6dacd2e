"""Inference: tiled, batched upscaling, the per-file loop of batch commands
(:mod:`spsr.infer.batch`, with :mod:`spsr.infer.files` finding inputs and naming outputs), and
the checkpoint loading it needs (re-exported from :mod:`spsr.checkpoints`)."""

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
from spsr.infer.files import Job, find_inputs, pending, plan_jobs
from spsr.infer.tiled import TiledUpscaler, plan_tiles, resolve_precision

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
