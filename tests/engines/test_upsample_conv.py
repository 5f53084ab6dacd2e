"""Nearest ×2 upsampling + 3×3 conv as one 2×2 convolution of the LR map
(spsr.engines.torch_fast.fused.upsample_conv)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spsr.archs.blocks import upconv_layers
from spsr.engines.torch_fast import fused as fast

needs_fused = pytest.mark.skipif(not fast.FUSED_OPS, reason="this PyTorch build has no fused oneDNN convolutions")


def _reference(conv: nn.Conv2d, x: torch.Tensor, slope: float | None) -> torch.Tensor:
    y = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    return F.leaky_relu(y, slope) if slope is not None else y


@needs_fused
@pytest.mark.parametrize("shape", [(1, 8, 16, 16), (2, 5, 7, 11), (1, 3, 1, 1)])
@pytest.mark.parametrize("slope", [0.2, None])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_upsampling_then_convolving(shape: tuple[int, int, int, int], slope: float | None, bias: bool,
                                             channels_last: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(shape[1], 6, 3, padding=1, bias=bias)
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = fast.upsample_conv(conv, x, slope)
        want = _reference(conv, x, slope)
    assert got.shape == want.shape == (shape[0], 6, 2 * shape[2], 2 * shape[3])
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), float((got - want).abs().max())
    assert got.is_contiguous(memory_format=torch.channels_last) == (channels_last and shape[2] * shape[3] > 1)


@needs_fused
def test_a_changed_weight_or_bias_is_rearranged_again() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 9, 9)
    with torch.no_grad():
        fast.upsample_conv(conv, x)
        conv.weight.mul_(-2.0)
        conv.bias.add_(1.0)
        got = fast.upsample_conv(conv, x)
        want = _reference(conv, x, None)
    assert torch.allclose(got, want, atol=1e-5)


@needs_fused
def test_run_layers_equals_the_sequential_and_only_pairs_what_it_can() -> None:
    torch.manual_seed(2)
    layers = nn.Sequential(*upconv_layers(8, 4), nn.Conv2d(8, 8, 3, padding=1), nn.LeakyReLU(0.2),
                           nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(8, 3, 3, padding=1))
    x = torch.randn(2, 8, 6, 5)
    with torch.no_grad():
        got = fast.run_layers(layers, x)
        with fast.plain_forward():
            plain = fast.run_layers(layers, x)
        want = layers(x)
    assert torch.equal(plain, want)  # the plain path is exactly nn.Sequential
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())
    assert fast.is_upsample_conv(layers[0], layers[1])
    assert not fast.is_upsample_conv(layers[8], layers[9])  # bilinear: not a nearest copy
    assert not fast.is_upsample_conv(nn.Upsample(scale_factor=3), nn.Conv2d(8, 8, 3, padding=1))
    assert not fast.is_upsample_conv(nn.Upsample(scale_factor=2), nn.Conv2d(8, 8, 3, padding=1, stride=2))


def test_training_keeps_the_sequential_path() -> None:
    layers = nn.Sequential(*upconv_layers(4, 2))
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    out = fast.run_layers(layers, x)
    out.sum().backward()
    assert x.grad is not None
    assert not hasattr(layers[1], "_spsr_subpixel")  # the rearranged kernels were never built


@needs_fused
def test_run_layers_fuses_conv_and_leaky_relu_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(4)
    layers = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(4, 4, 3, padding=1),
                           nn.Conv2d(4, 2, 3, padding="same"), nn.LeakyReLU(0.2))
    fused: list[float] = []
    real = fast.conv_lrelu
    monkeypatch.setattr(fast, "conv_lrelu", lambda conv, x, slope=0.2: fused.append(slope) or real(conv, x, slope))
    x = torch.randn(1, 4, 9, 7)
    with torch.no_grad():
        got = fast.run_layers(layers, x)
        want = layers(x)
    assert torch.allclose(got, want, atol=1e-5)
    assert fused == [0.1]  # the string-padded conv keeps the plain path
