"""What every inference path decides the same way: the compute precision, the evaluation
upscaler and its overlap, and a tiled forward that also returns the gradient branch.

``spsr eval``, an ablation row's scoring, the training's validation and ``spsr gradmap`` all
build their upscaler here, so a model is scored identically wherever it is scored. What the CPU
can do is read by :mod:`spsr.cpu`; devices are checked by :func:`spsr.devices.resolve_device`;
training's ``--amp`` and inference's ``--precision`` are decided by one function,
:func:`compute_dtype`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from spsr import cpu
from spsr.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from spsr.infer.tiled import TiledUpscaler

#: ``--precision`` of the inference commands.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``--amp`` of training (``off``: fp32).
AMP_MODES = ("auto", "off", "bf16", "fp16")
#: The overlap of evaluation tiles in LR pixels (less for tiles too small for it).
EVAL_OVERLAP = 16


def precision_reason(precision: str, device: torch.device) -> str:
    """Why :func:`compute_dtype` picks what it picks, in a few words (for benchmarks and logs)."""
    if precision != "auto":
        return f"--precision {precision} asked for"
    if device.type == "cuda":
        return "CUDA: bf16 where the GPU supports it, else fp16"
    if device.type != "cpu":
        return f"{device.type}: fp32"
    if cpu.cpu_has_fast_bf16():
        return "the CPU has native bf16 (AVX512-BF16/AMX)"
    if cpu.cpu_flags_have_bf16():
        return f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')} keeps oneDNN off its bf16 kernels"
    return "no native bf16 on this CPU (bf16 would be emulated, slower than fp32)"


def compute_dtype(mode: str, device: torch.device, training: bool = False) -> torch.dtype:
    """The dtype a model computes in for a precision name on a device.

    ``auto``: bf16 on CUDA GPUs that support it, else fp16; on the CPU bf16 where it has native
    bf16 instructions, else fp32. ``fp16`` is CUDA only.

    Args:
        mode: inference's ``--precision`` (:data:`PRECISIONS`), or training's ``--amp``
            (:data:`AMP_MODES`, with ``training``).
        device: where the model runs.
        training: ``mode`` is an ``--amp`` mode (the messages name that option).

    Raises:
        ConfigError: an unknown mode, or one the device cannot run.
    """
    if mode not in (AMP_MODES if training else PRECISIONS):
        if training:
            raise ConfigError(f"unknown amp mode {mode!r} (auto, off, bf16, fp16)")
        raise ConfigError(f"unknown precision {mode!r}; use one of {', '.join(PRECISIONS)}")
    if mode in ("fp32", "off"):
        return torch.float32
    if mode == "fp16":
        if device.type != "cuda":
            if training:
                raise ConfigError(
                    "fp16 training needs CUDA; use --amp bf16 or --amp off on the CPU"
                )
            raise ConfigError("fp16 runs only on CUDA; use --precision bf16 or fp32 on the CPU")
        return torch.float16
    if mode == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("this GPU does not support bf16; use "
                              + ("--amp fp16" if training else "fp16 or fp32"))
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu.cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype of an inference ``--precision`` (:func:`compute_dtype`)."""
    return compute_dtype(precision, device)


def eval_overlap(tile: int) -> int:
    """The overlap of evaluation tiles: :data:`EVAL_OVERLAP` LR pixels, less for tiny tiles (it
    must stay below half the tile), none without tiling."""
    return min(EVAL_OVERLAP, max(0, (tile - 1) // 2)) if tile else 0


def eval_upscaler(
    model: nn.Module,
    scale: int,
    tile: int,
    device: str | torch.device,
    precision: str,
    batch: int = 4,
    engine: str = "torch",
    on_note: Callable[[str], None] | None = None,
    engine_retune: bool = False,
) -> TiledUpscaler:
    """How a model is scored everywhere: tiled with :func:`eval_overlap`, ``batch`` tiles a pass,
    run by ``engine`` (:mod:`spsr.engines`; PyTorch by default, as training validates;
    ``engine_retune``: ``auto`` measures again, :mod:`spsr.engines.autotune`)."""
    from spsr.infer.tiled import TiledUpscaler

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
