"""Generator checkpoints: reading every supported layout, detecting the architecture, checking
and building the network, writing spsr's ``.safetensors``.

The layer below both inference (:mod:`spsr.infer`) and training (:mod:`spsr.train`): neither
reads a weights file any other way. Training's ``--init`` (fitting a checkpoint into another
architecture) is in :mod:`spsr.train.init_from`.
"""

from spsr.checkpoints.io import (
    BUILTIN_NAMES,
    BUILTIN_WEIGHTS,
    DEFAULT_WEIGHTS,
    FORMAT,
    Inspected,
    LoadedModel,
    detect_spec,
    inspect_checkpoint,
    load_model,
    read_checkpoint,
    resolve_weights,
    save_weights,
)

__all__ = [
    "BUILTIN_NAMES",
    "BUILTIN_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "FORMAT",
    "Inspected",
    "LoadedModel",
    "detect_spec",
    "inspect_checkpoint",
    "load_model",
    "read_checkpoint",
    "resolve_weights",
    "save_weights",
]
