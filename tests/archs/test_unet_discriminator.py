"""The U-Net discriminator of the U-Net follow-up (tiny configurations)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from spsr.archs.discriminator_unet import UNetDiscriminator, UNetDOutput


def tiny(**kw: object) -> UNetDiscriminator:
    torch.manual_seed(0)
    return UNetDiscriminator(nf=8, channel_mult=(1, 2, 4), **kw)  # type: ignore[arg-type]


def test_returns_global_and_per_pixel_outputs_with_block_features() -> None:
    out = tiny()(torch.rand(2, 3, 32, 24))
    assert isinstance(out, UNetDOutput)
    assert out.global_logit.shape == (2, 1)
    assert out.pixel_logits.shape == (2, 1, 32, 24)
    sizes = [tuple(f.shape[-2:]) for f in out.features]
    assert sizes == [(16, 12), (8, 6), (4, 3), (8, 6), (16, 12), (32, 24)]
    assert [f.shape[1] for f in out.features] == [8, 16, 32, 16, 8, 8]


def test_decoder_sees_the_encoder_through_the_skips() -> None:
    """Changing the input changes the first encoder block, and the per-pixel map follows."""
    d = tiny().eval()
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    d(x).pixel_logits.sum().backward()
    first_conv = d.encoder[0].conv1.parametrizations.weight.original
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0


def test_every_conv_and_the_linear_are_spectrally_normalised() -> None:
    d = tiny()
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(parametrize.is_parametrized(m) for m in tiny(use_sn=False).modules())


def test_spectral_norm_bounds_the_largest_singular_value() -> None:
    conv = tiny().train().encoder[1].conv1
    with torch.no_grad():
        for _ in range(30):  # each access in training mode runs one power iteration
            weight = conv.weight  # the normalised weight
    sigma = torch.linalg.matrix_norm(weight.reshape(weight.shape[0], -1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_decisions_do_not_depend_on_the_rest_of_the_batch() -> None:
    d = tiny().eval()
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        whole, alone = d(x), d(x[1:2])
    torch.testing.assert_close(whole.pixel_logits[1:2], alone.pixel_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(whole.global_logit[1:2], alone.global_logit, atol=1e-5, rtol=1e-5)


def test_input_size_must_fit_the_depth() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny()(torch.rand(1, 3, 20, 16))
