"""The U-Net follow-up's generator option: the desubpixel head of SPSRNet (tiny configurations)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spsr.archs import ArchSpec, SPSRNet, build_model

TINY = dict(nf=8, nb=2, gc=4)


def test_default_generator_keeps_its_keys_and_shapes() -> None:
    plain = SPSRNet(**TINY, scale=4)
    head = SPSRNet(**TINY, scale=4, desubpixel_head=True)
    plain_sd, head_sd = plain.state_dict(), head.state_dict()
    assert set(plain_sd) == set(head_sd)
    changed = {k for k in plain_sd if plain_sd[k].shape != head_sd[k].shape}
    assert changed == {"model.0.weight", "b_fea_conv.0.weight"}
    assert head_sd["model.0.weight"].shape[1] == 3 * 16


def test_desubpixel_head_is_rebuilt_from_the_spec() -> None:
    spec = ArchSpec.from_dict(ArchSpec(scale=2, extra={"desubpixel_head": True}, **TINY).to_dict())
    model = build_model(spec)
    assert isinstance(model, SPSRNet) and model.desubpixel_head
    assert model.model[0].weight.shape[1] == 3 * 4


@pytest.mark.parametrize("scale", [2, 4])
def test_lr_input_equals_its_nearest_upsampled_input(scale: int) -> None:
    torch.manual_seed(0)
    model = SPSRNet(**TINY, scale=scale, desubpixel_head=True).eval()
    lr = torch.rand(2, 3, 6, 5)
    with torch.no_grad():
        from_lr = model(lr)
        from_up = model(F.interpolate(lr, scale_factor=scale, mode="nearest"), upsampled=True)
    assert from_lr.sr.shape == (2, 3, 6 * scale, 5 * scale)
    assert from_lr.grad.shape == from_lr.sr.shape
    assert from_lr.lr_grad.shape == from_lr.sr.shape
    torch.testing.assert_close(from_lr.sr, from_up.sr)


def test_hr_content_in_the_input_changes_the_output() -> None:
    """CutBlur puts HR pixels into the upsampled input; the head must see them."""
    torch.manual_seed(0)
    model = SPSRNet(**TINY, scale=2, desubpixel_head=True).eval()
    up = F.interpolate(torch.rand(1, 3, 4, 4), scale_factor=2, mode="nearest")
    patched = up.clone()
    patched[..., :4, :4] = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        assert not torch.allclose(model(up, upsampled=True).sr, model(patched, upsampled=True).sr)


def test_upsampled_input_is_refused_without_the_head_or_off_grid() -> None:
    with pytest.raises(ValueError, match="desubpixel_head"):
        SPSRNet(**TINY, scale=2)(torch.rand(1, 3, 8, 8), upsampled=True)
    with pytest.raises(ValueError, match="multiple of 2"):
        SPSRNet(**TINY, scale=2, desubpixel_head=True)(torch.rand(1, 3, 9, 8), upsampled=True)
