"""The compute precision every path decides the same way: inference's ``--precision`` and
training's ``--amp`` map to a dtype through one function, :func:`compute_dtype`, from what the
device can do (:mod:`spsr.cpu` for the CPU's native bf16)."""

from __future__ import annotations

import os

import torch

from spsr import cpu
from spsr.errors import ConfigError

#: ``--precision`` of the inference commands.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: ``--amp`` of training (``off``: fp32).
AMP_MODES = ("auto", "off", "bf16", "fp16")

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
