"""Inference-only fused convolutions for the RRDB blocks on the CPU (fp32).

Under ``torch.no_grad()`` / ``torch.inference_mode()`` on the CPU in fp32, the dense blocks run
each ``conv → LeakyReLU`` as one oneDNN convolution with the activation as a post-op, and the
residual ``x + 0.2·conv5(…)`` as one convolution whose result is added into a copy of ``x``
(oneDNN's binary-add post-op, the weights pre-scaled by 0.2). That saves a pass over memory per
activation and two per residual; the arithmetic is the same up to fp32 rounding (about 1e-6).

RRDBs on maps of at least 48×48 pixels go further: :mod:`spsr.archs.winograd` runs all fifteen
3×3 convolutions of the block in Winograd F(4×4, 3×3) (four times fewer multiplications, about
1e-6 from the direct result; ``SPSR_WINOGRAD=0`` turns only that off).

Everything else takes the plain path, which is also the official networks' op sequence: autograd
(training), autocast (the bf16/fp16 paths), CUDA/MPS, other dtypes, a PyTorch build without the
fused operators, anything inside :func:`plain_forward` (benchmarks and equivalence tests), and
every process started with ``SPSR_PLAIN_FORWARD=1`` in its environment.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import torch
from torch import nn

_local = threading.local()


def _fused_ops_available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return (torch.backends.mkldnn.is_available() and ops is not None
                and hasattr(ops._convolution_pointwise, "default") and hasattr(ops._convolution_pointwise_, "binary"))
    except (AttributeError, RuntimeError):
        return False


FUSED_OPS = _fused_ops_available()


@contextlib.contextmanager
def plain_forward() -> Iterator[None]:
    """Run the networks' plain (official) forward inside this block, on this thread."""
    before = getattr(_local, "plain", False)
    _local.plain = True
    try:
        yield
    finally:
        _local.plain = before


def use_fused(x: torch.Tensor) -> bool:
    """Whether the fused inference path applies to the feature map ``x``."""
    return (FUSED_OPS and not getattr(_local, "plain", False) and not torch.is_grad_enabled()
            and os.environ.get("SPSR_PLAIN_FORWARD", "") in ("", "0")
            and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
            and not torch.is_autocast_enabled("cpu"))


def _geometry(conv: nn.Conv2d) -> tuple[list[int], list[int], list[int], int]:
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError("fused convolution needs numeric zero padding")
    return list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups


def conv_lrelu(conv: nn.Conv2d, x: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    """``leaky_relu(conv(x), slope)`` as one oneDNN convolution."""
    pad, stride, dil, groups = _geometry(conv)
    return torch.ops.mkldnn._convolution_pointwise(x, conv.weight, conv.bias, pad, stride, dil, groups,
                                                   "leaky_relu", [slope], "")


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``channels_last`` for a channels-last (and not also plain-contiguous) tensor, else contiguous."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def conv_residual_(conv: nn.Conv2d, x: torch.Tensor, out: torch.Tensor, scale: float) -> torch.Tensor:
    """``out += scale·conv(x)`` as one oneDNN convolution with an add post-op; returns ``out``.

    ``out`` must be a tensor the caller owns (it is written in place); it is made contiguous in
    ``x``'s memory format first if it is not already.
    """
    pad, stride, dil, groups = _geometry(conv)
    fmt = memory_format_of(x)
    if not out.is_contiguous(memory_format=fmt):
        out = out.contiguous(memory_format=fmt)
    bias = conv.bias * scale if conv.bias is not None else None
    return torch.ops.mkldnn._convolution_pointwise_(out, x, conv.weight * scale, bias, pad, stride, dil, groups,
                                                    "add", 1.0, None, [], None)
