"""What every inference path decides the same way: the compute precision, the evaluation
upscaler and its overlap, and a tiled forward that also returns the gradient branch.

``spsr eval``, an ablation row's scoring, the training's validation and ``spsr gradmap`` all
build their upscaler here, so a model is scored identically wherever it is scored. What the CPU
can do is read by :mod:`spsr.cpu`; devices are checked by :func:`spsr.devices.resolve_device`;
training's ``--amp`` and inference's ``--precision`` are decided by one function,
:func:`spsr.infer.precision.compute_dtype`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from spsr.infer.tiled import TiledUpscaler
from spsr.lite.tiles import EVAL_OVERLAP, eval_overlap

__all__ = ["EVAL_OVERLAP", "eval_overlap", "eval_upscaler"]

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

def eval_upscaler(
    model: nn.Module,
    scale: int,
    tile: int,
    device: str | torch.device,
    precision: str,
    batch: int | None = None,
    engine: str = "torch",
    on_note: Callable[[str], None] | None = None,
    engine_retune: bool = False,
) -> TiledUpscaler:
    """How a model is scored everywhere: tiled with :func:`eval_overlap`, ``batch`` tiles a pass
    (None: 1 on the CPU, 4 on a GPU),
    run by ``engine`` (:mod:`spsr.engines`; PyTorch by default, as training validates;
    ``engine_retune``: ``auto`` measures again, :mod:`spsr.engines.autotune`)."""
    return TiledUpscaler(model, scale, tile=tile, overlap=eval_overlap(tile), batch=batch,
                         device=device, precision=precision, engine=engine, on_note=on_note,
                         engine_retune=engine_retune)


def uint8_upscaler(
    upscaler: TiledUpscaler, on_tiles: Callable[[int, int], None] | None = None
) -> Callable[[np.ndarray], np.ndarray]:
    """``upscaler`` on uint8 HWC arrays, as the metrics take them (``on_tiles(done, total)``:
    progress within each image)."""
    from spsr.data.image_io import from_tensor, to_tensor

    return lambda lr: from_tensor(upscaler(to_tensor(lr), on_tiles=on_tiles))


def load_eval_upscaler(
    source: str, scale: int, tile: int, device: str, precision: str, engine: str = "torch",
    on_note: Callable[[str], None] | None = None,
    on_tiles: Callable[[int, int], None] | None = None,
    engine_retune: bool = False,
) -> tuple[Callable[[np.ndarray], np.ndarray], list[str]]:
    """``spsr eval --weights``'s upscaler: the model of ``source`` loaded for ``scale``, scored as
    :func:`eval_upscaler`, uint8 in and out; and the loader's warnings (guessed sizes...).
    ``on_tiles(done, total)`` is told the progress within each image; ``engine_retune``: ``auto``
    measures the engines again.

    Raises:
        CheckpointError: the weights cannot be read, or are for another scale.
    """
    from spsr.checkpoints.io import load_model

    loaded = load_model(source, device=device, expected_scale=scale)
    upscaler = eval_upscaler(loaded.model, scale, tile, device, precision, engine=engine, on_note=on_note,
                             engine_retune=engine_retune)
    return uint8_upscaler(upscaler, on_tiles), loaded.warnings
