"""The PSNR stage's optional gradient-space terms (CVPR 2020 eq. 7 and eq. 9 without a GAN): the
gradient pixel loss on M(SR) and the branch loss on the gradient branch's map, each equal to an
independent computation and absent at weight 0."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _train_fixtures import one_thread, tiny_config  # noqa: F401 (autouse fixture)

from spsr.ops import gradient_map
from spsr.train.config import set_arch, validate
from spsr.train.distributed import DistContext
from spsr.train.runtime import Runtime
from spsr.train.stages.psnr import PSNRStage

SHAPES = {"lr": (3, 8, 8), "hr": (3, 32, 32)}


def _stage(arch: str = "spsr", **overrides: object) -> PSNRStage:
    cfg = tiny_config("psnr", **overrides)
    set_arch(cfg, arch)
    cfg = validate(cfg)
    torch.manual_seed(0)
    return PSNRStage(cfg, Runtime(cfg=cfg, dist=DistContext(), data_shapes=SHAPES))


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    return {"lr": F.avg_pool2d(hr, 4), "hr": hr}


def test_gradient_pixel_and_branch_terms_match_independent_computations() -> None:
    batch = _batch()
    stage = _stage(**{"loss.branch": 0.5, "loss.gradient_pixel": 0.2})
    with torch.no_grad():
        out = stage.G(batch["lr"])
        hr = batch["hr"]
        expected = {
            "g/pixel": F.l1_loss(out.sr, hr).item(),
            "g/grad_pixel": 0.2 * F.l1_loss(gradient_map(out.sr, 1), gradient_map(hr, 1)).item(),
            "g/branch": 0.5 * F.l1_loss(out.grad, gradient_map(hr, 1)).item(),
        }
    values = stage.train_step(batch)  # the terms are computed before the update
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-5), key
    assert values["g/total"] == pytest.approx(sum(expected.values()), rel=1e-5)


def test_the_psnr_preset_has_no_gradient_terms() -> None:
    values = _stage().train_step(_batch())
    assert set(values) == {"g/pixel", "g/total"}


def test_gradient_pixel_trains_a_plain_generator_too() -> None:
    values = _stage("rrdb", **{"loss.gradient_pixel": 0.1}).train_step(_batch())
    assert set(values) == {"g/pixel", "g/grad_pixel", "g/total"}
    assert values["g/grad_pixel"] > 0
