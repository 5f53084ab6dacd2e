"""Inference: model loading (any supported checkpoint layout) and tiled, batched upscaling."""

from spsr.infer.checkpoint import (
    BUILTIN_NAMES,
    BUILTIN_WEIGHTS,
    DEFAULT_WEIGHTS,
    Inspected,
    LoadedModel,
    detect_spec,
    inspect_checkpoint,
    load_init,
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
    "load_init",
    "load_model",
    "plan_tiles",
    "read_checkpoint",
    "resolve_precision",
    "resolve_weights",
    "save_weights",
]
