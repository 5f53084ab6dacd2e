"""Inference-only fused convolutions for the RRDB blocks on the CPU (fp32).

Under ``torch.no_grad()`` / ``torch.inference_mode()`` on the CPU in fp32, the dense blocks run
each ``conv → LeakyReLU`` as one oneDNN convolution with the activation as a post-op, and the
residual ``x + 0.2·conv5(…)`` as one convolution whose result is added into a copy of ``x``
(oneDNN's binary-add post-op, the weights pre-scaled by 0.2). That saves a pass over memory per
activation and two per residual; the arithmetic is the same up to fp32 rounding (about 1e-6).

RRDBs on maps of at least 48×48 pixels go further: :mod:`spsr.engines.torch_fast.winograd` runs all fifteen
3×3 convolutions of the block in Winograd F(4×4, 3×3) (four times fewer multiplications, about
1e-6 from the direct result; ``SPSR_WINOGRAD=0`` turns only that off).

The upsampling steps (nearest ×2, then a 3×3 convolution) run as one 2×2 convolution on the LR
map (:func:`upsample_conv`): on a nearest-upsampled map each output pixel's 3×3 window covers
only 2×2 distinct LR pixels, so each of the four output phases is a 2×2 kernel of summed taps,
16 multiplications per LR pixel and channel pair instead of 36, and no upsampled copy. The
layer sequences around them (:func:`run_layers`: the trunk's tail, the gradient branch's
upsampler, the fusion head) also run every other conv → LeakyReLU pair as one convolution.

Everything else takes the plain path, which is also the official networks' op sequence: autograd
(training), autocast (the bf16/fp16 paths), CUDA/MPS, other dtypes, a PyTorch build without the
fused operators, anything inside :func:`plain_forward` (benchmarks and equivalence tests), and
every process started with ``SPSR_PLAIN_FORWARD=1`` in its environment.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch
from torch import nn

_local = threading.local()
_T = TypeVar("_T")


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


def fusable(conv: nn.Module) -> bool:
    """Whether ``conv`` is a convolution the fused oneDNN operators can run (numeric zero padding)."""
    return isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def _geometry(conv: nn.Conv2d) -> tuple[list[int], list[int], list[int], int]:
    padding = conv.padding
    if not fusable(conv) or isinstance(padding, str):  # the second test only narrows the type
        raise ValueError("fused convolution needs numeric zero padding")
    return list(padding), list(conv.stride), list(conv.dilation), conv.groups


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


def cached_transform(conv: nn.Conv2d, slot: str, make: Callable[[nn.Conv2d], _T]) -> _T:
    """``make(conv)`` (a re-arranged copy of its weights), kept on the module under ``slot`` until
    the weight or the bias is replaced or changed in place."""
    w, b = conv.weight, conv.bias
    key = (w.data_ptr(), w._version, tuple(w.shape), None if b is None else (b.data_ptr(), b._version))
    cache = getattr(conv, slot, None)
    if cache is None or cache[0] != key:
        cache = (key, make(conv))
        setattr(conv, slot, cache)
    return cache[1]


#: Taps of a 3×3 kernel row that fall on each of the 2 LR rows an output row of the ×2
#: nearest-upsampled map sees: ``[phase][tap][kernel row]`` (phase 0: LR rows i-1, i; phase 1: i, i+1).
_PHASE_TAPS = torch.tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], dtype=torch.float64)


def _subpixel_weights(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The four phases' 2×2 kernels stacked as ``(4·Cout, Cin, 2, 2)`` (phase ``2·py + px``), fp64-summed."""
    w = conv.weight.detach()
    cout, cin = w.shape[:2]
    k = torch.einsum("yta,xsb,oiab->yxoits", _PHASE_TAPS, _PHASE_TAPS, w.double())
    bias = None if conv.bias is None else conv.bias.detach().repeat(4).contiguous()
    return k.reshape(4 * cout, cin, 2, 2).to(w.dtype).contiguous(), bias


def is_upsample_conv(up: nn.Module, conv: nn.Module) -> bool:
    """Whether ``up`` → ``conv`` is a nearest ×2 upsampling followed by a plain 3×3 convolution."""
    return (isinstance(up, nn.Upsample) and up.mode == "nearest" and up.size is None
            and up.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0))
            and fusable(conv) and isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3)
            and conv.padding == (1, 1) and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1)


def upsample_conv(conv: nn.Conv2d, x: torch.Tensor, slope: float | None = None) -> torch.Tensor:
    """``conv(upsample_nearest_2x(x))`` (then LeakyReLU ``slope``) without the upsampled map.

    One 2×2 convolution of ``x`` (zero padding 1) gives all four phases at once, ``(H+1)×(W+1)``
    each; phase ``(py, px)`` of output pixel ``(2i+py, 2j+px)`` is its value at ``(i+py, j+px)``.
    The result is in ``x``'s memory format.
    """
    kernel, bias = cached_transform(conv, "_spsr_subpixel", _subpixel_weights)
    attr, scalars = ("leaky_relu", [slope]) if slope is not None else ("none", [])
    phases = torch.ops.mkldnn._convolution_pointwise(x, kernel, bias, [1, 1], [1, 1], [1, 1], 1, attr, scalars, "")
    n, _, h, w = x.shape
    cout = conv.out_channels
    out = torch.empty((n, cout, 2 * h, 2 * w), dtype=x.dtype, device=x.device, memory_format=memory_format_of(x))
    for py in (0, 1):
        for px in (0, 1):
            ph = 2 * py + px
            out[:, :, py::2, px::2] = phases[:, ph * cout:(ph + 1) * cout, py:py + h, px:px + w]
    return out


def run_layers(layers: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """``x`` through ``layers`` in order, as ``nn.Sequential`` would; where the fused path applies,
    each nearest ×2 upsampling + 3×3 conv (+ LeakyReLU) runs as :func:`upsample_conv` and each
    other conv + LeakyReLU as one convolution with the activation fused."""
    seq = list(layers)
    i = 0
    while i < len(seq):
        layer, nxt = seq[i], seq[i + 1] if i + 1 < len(seq) else None
        if nxt is not None and use_fused(x):
            if is_upsample_conv(layer, nxt):
                assert isinstance(nxt, nn.Conv2d)
                act = seq[i + 2] if i + 2 < len(seq) else None
                slope = act.negative_slope if isinstance(act, nn.LeakyReLU) else None
                x = upsample_conv(nxt, x, slope)
                i += 3 if slope is not None else 2
                continue
            if fusable(layer) and isinstance(nxt, nn.LeakyReLU):
                assert isinstance(layer, nn.Conv2d)
                x = conv_lrelu(layer, x, nxt.negative_slope)
                i += 2
                continue
        x = layer(x)
        i += 1
    return x
