"""Inference: tiled, batched upscaling, and the checkpoint loading it needs (re-exported from
:mod:`spsr.checkpoints`)."""

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
from spsr.infer.tiled import TiledUpscaler, plan_tiles, resolve_precision

__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "Inspected",
    "LoadedModel",
    "TiledUpscaler",
    "detect_spec",
    "inspect_checkpoint",
    "load_model",
    "plan_tiles",
    "read_checkpoint",
    "resolve_precision",
    "resolve_weights",
    "save_weights",
]
