"""SPSRNet's ``image_skip`` option (residual over bicubic, used by the small built-in models): no
extra weights, exactly bicubic when the residual is zero, rebuilt from a weights file's spec, and
settable from the command line as ``--set model.extra.image_skip=true``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spsr.archs import ArchSpec, build_model
from spsr.errors import ConfigError
from spsr.infer import load_model, save_weights
from spsr.train.config import apply_overrides
from spsr.train.variants import preset

SPEC = ArchSpec("spsr", 4, nf=8, nb=2, gc=4)


def test_same_keys_and_bicubic_output_when_the_residual_is_zero() -> None:
    torch.manual_seed(0)
    plain, skip = build_model(SPEC), build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True}))
    assert plain.state_dict().keys() == skip.state_dict().keys()
    skip.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 11, 9)
    bicubic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    with torch.no_grad():
        assert torch.allclose(skip(x).sr, plain(x).sr + bicubic, atol=1e-6)
        for p in skip.f_HR_conv1.parameters():
            p.zero_()
        assert torch.equal(skip(x).sr, bicubic)
        assert torch.equal(skip(x).grad, plain(x).grad)  # the gradient branch is unchanged


def test_the_option_travels_in_the_weights_file(tmp_path) -> None:
    spec = ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True})
    path = save_weights(tmp_path / "m.safetensors", build_model(spec), spec)
    loaded = load_model(path)
    assert loaded.spec.extra == {"image_skip": True} and loaded.model.image_skip


def test_set_reaches_a_dict_entry_and_parses_json_values() -> None:
    cfg = preset("psnr")
    apply_overrides(cfg, {"model.arch": "spsr", "model.extra.image_skip": "true", "model.extra.note": "x y"})
    assert cfg.model.extra == {"image_skip": True, "note": "x y"}
    with pytest.raises(ConfigError, match=r"model\.nothing"):
        apply_overrides(cfg, {"model.nothing.deeper": "1"})


def test_image_skip_and_desubpixel_head_are_refused_together() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True, "desubpixel_head": True}))


def test_under_bf16_autocast_the_skip_is_added_in_fp32() -> None:
    net = build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True}))
    with torch.no_grad():
        for p in net.f_HR_conv1.parameters():
            p.zero_()
        x = torch.rand(1, 3, 8, 8)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x).sr
    assert out.dtype == torch.float32  # a bf16 sum would round the bicubic image to ~1/255
    assert torch.equal(out, F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False))
