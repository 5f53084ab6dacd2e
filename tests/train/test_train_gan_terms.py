"""Each loss term of the GAN stage is present with its weight and sends gradients only where it
should (random VGG19 as the perceptual network; tiny generator and discriminators)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from _train_fixtures import one_thread, tiny_config  # noqa: F401 (autouse fixture)

from spsr.archs import SROutput
from spsr.errors import ConfigError
from spsr.losses.gan import make_adversarial_loss
from spsr.ops import gradient_map
from spsr.train.config import TrainConfig, set_arch, validate
from spsr.train.distributed import DistContext
from spsr.train.runtime import Runtime, frozen
from spsr.train.stages.gan import GANStage

SHAPES = {"lr": (3, 8, 8), "hr": (3, 32, 32)}


def _stage(variant: str = "g", **overrides: object) -> GANStage:
    return _stage_of(tiny_config(variant, **overrides))


def _stage_of(cfg: TrainConfig) -> GANStage:
    cfg = validate(cfg)
    torch.manual_seed(0)
    return GANStage(cfg, Runtime(cfg=cfg, dist=DistContext(), data_shapes=SHAPES))


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    return {"lr": F.avg_pool2d(hr, 4), "hr": hr}


def _grads(module: torch.nn.Module, prefix: str = "") -> dict[str, bool]:
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0)
            for n, p in module.named_parameters() if n.startswith(prefix)}


def test_spsr_g_terms_and_their_weights_match_independent_computations() -> None:
    stage, batch = _stage("g"), _batch()
    hr = batch["hr"]
    out = stage.G(batch["lr"])
    assert isinstance(out, SROutput)
    terms = stage.generator_terms(out, batch)
    assert set(terms) == {"g/pixel", "g/perceptual", "g/grad_pixel", "g/branch"}
    vgg = stage.module("vgg")
    expected = {
        "g/pixel": 0.01 * F.l1_loss(out.sr, hr),
        "g/perceptual": 1.0 * F.l1_loss(vgg(out.sr), vgg(hr)),
        "g/grad_pixel": 0.01 * F.l1_loss(gradient_map(out.sr, 1), gradient_map(hr, 1)),
        "g/branch": 0.5 * F.l1_loss(out.grad, gradient_map(hr, 1)),
    }
    for key, value in expected.items():
        assert terms[key].item() == pytest.approx(value.item(), rel=1e-5), key
    assert [a.name for a in stage.adversaries] == ["D", "D_grad"]
    assert [a.weight for a in stage.adversaries] == [0.005, 0.005]
    ragan = make_adversarial_loss("ragan")
    d, dg = stage.module("D"), stage.module("D_grad")
    with torch.no_grad():
        gan = 0.005 * ragan.generator(d(hr), d(out.sr))
        grad_gan = 0.005 * ragan.generator(dg(gradient_map(hr, 1)), dg(gradient_map(out.sr, 1)))
    values = _stage("g").train_step(batch)  # same seed: same networks, one full step
    assert values["g/gan"] == pytest.approx(gan.item(), rel=1e-4)
    assert values["g/grad_gan"] == pytest.approx(grad_gan.item(), rel=1e-4)
    total = sum(values[k] for k in ("g/pixel", "g/perceptual", "g/grad_pixel", "g/branch", "g/gan", "g/grad_gan"))
    assert values["g/total"] == pytest.approx(total, rel=1e-5)
    assert {"d_gan/loss", "d_grad_gan/loss", "d_gan/real", "d_gan/fake"} <= set(values)


def test_term_values_scale_with_their_weights() -> None:
    batch = _batch()
    base = _stage("g")
    doubled = _stage("g", **{"loss.pixel": 0.02, "loss.branch": 1.0, "loss.gradient_pixel": 0.04})
    a = base.generator_terms(base.G(batch["lr"]), batch)
    b = doubled.generator_terms(doubled.G(batch["lr"]), batch)
    assert b["g/pixel"].item() == pytest.approx(2 * a["g/pixel"].item(), rel=1e-6)
    assert b["g/branch"].item() == pytest.approx(2 * a["g/branch"].item(), rel=1e-6)
    assert b["g/grad_pixel"].item() == pytest.approx(4 * a["g/grad_pixel"].item(), rel=1e-6)


def test_esrgan_has_no_gradient_space_terms_and_zero_weights_remove_networks() -> None:
    stage, batch = _stage("esrgan"), _batch()
    assert set(stage.generator_terms(stage.G(batch["lr"]), batch)) == {"g/pixel", "g/perceptual"}
    assert [a.name for a in stage.adversaries] == ["D"]
    bare = _stage("g", **{"loss.gan": 0.0, "loss.perceptual_net": "none"})
    assert [a.name for a in bare.adversaries] == ["D_grad"] and "vgg" not in bare.rt.networks
    with pytest.raises(ConfigError, match="gradient branch"):
        _stage("esrgan", **{"loss.branch": 0.5})


def test_edsr_g_is_a_plain_edsr_with_the_gradient_losses_and_no_branch() -> None:
    # TPAMI 2021 App. D: EDSR-G = the plain EDSR trained with SPSR-G's gradient loss.
    cfg = tiny_config("g")
    set_arch(cfg, "edsr")
    cfg.model.nb = 2
    stage, batch = _stage_of(cfg), _batch()
    assert type(stage.module("G")).__name__ == "EDSR" and cfg.loss.branch == 0
    out = stage.G(batch["lr"])
    assert isinstance(out, torch.Tensor)  # no gradient branch output
    assert set(stage.generator_terms(out, batch)) == {"g/pixel", "g/perceptual", "g/grad_pixel"}
    assert [a.name for a in stage.adversaries] == ["D", "D_grad"]
    values = stage.train_step(batch)
    assert values["g/grad_gan"] > 0 and "g/branch" not in values


def test_branch_term_reaches_the_branch_and_trunk_but_not_the_fusion() -> None:
    stage, batch = _stage("g"), _batch()
    stage.generator_terms(stage.G(batch["lr"]), batch)["g/branch"].backward()
    g = stage.module("G")
    grads = _grads(g)
    assert all(grads[n] for n in grads if n.startswith(("b_", "conv_w")))
    assert any(grads[n] for n in grads if n.startswith("model."))
    assert not any(grads[n] for n in grads if n.startswith("f_"))


def test_image_terms_reach_the_fusion_not_the_gradient_head_nor_frozen_networks() -> None:
    stage, batch = _stage("g"), _batch()
    terms = stage.generator_terms(stage.G(batch["lr"]), batch)
    (terms["g/pixel"] + terms["g/perceptual"] + terms["g/grad_pixel"]).backward()
    grads = _grads(stage.module("G"))
    assert all(grads[n] for n in grads if n.startswith("f_"))
    assert not any(grads[n] for n in grads if n.startswith("conv_w"))  # only the branch loss uses it
    assert all(p.grad is None for p in stage.module("vgg").parameters())


def test_adversarial_terms_train_g_and_never_the_frozen_discriminators() -> None:
    stage, batch = _stage("g"), _batch()
    out = stage.G(batch["lr"])
    adv = stage.adversaries
    with frozen(*(stage.module(a.name) for a in adv)):
        loss = sum(a.weight * a.loss.generator(stage.module(a.name)(a.view(batch["hr"])).detach(),
                                               stage.module(a.name)(a.view(out.sr))) for a in adv)
    loss.backward()
    assert any(_grads(stage.module("G")).values())
    for a in adv:
        assert all(p.grad is None for p in stage.module(a.name).parameters())
        assert all(p.requires_grad for p in stage.module(a.name).parameters())  # restored


def test_discriminator_steps_do_not_reach_the_generator_and_operators_stay_fixed() -> None:
    stage, batch = _stage("g"), _batch()
    g = stage.module("G")
    kernels = {n: b.clone() for n, b in g.named_buffers() if "get_g_nopadding" in n}
    loss_kernels = [b.clone() for b in stage.gradient.buffers()]
    assert kernels and not any("get_g_nopadding" in n for n, _ in g.named_parameters())
    before_d = {n: p.clone() for n, p in stage.module("D").named_parameters()}
    for _ in range(2):
        stage.train_step(batch)
        # G's step cleared its gradients before the D steps: any gradient here leaked from a D loss
        assert all(p.grad is None for p in g.parameters())
    assert any(not torch.equal(before_d[n], p) for n, p in stage.module("D").named_parameters())
    assert all(torch.equal(kernels[n], b) for n, b in g.named_buffers() if n in kernels)
    assert all(torch.equal(a, b) for a, b in zip(loss_kernels, stage.gradient.buffers(), strict=True))


def test_official_gradient_form_feeds_padding2_maps_to_a_130_pixel_d_grad() -> None:
    stage = _stage("g", **{"loss.gradient_form": "official"})
    d_grad = stage.module("D_grad")
    assert d_grad.input_size == 34  # 32-pixel HR crops + 2 (128 → 130 at the papers' size)
    values = stage.train_step(_batch())
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values())


def test_generator_sees_warmup_only_through_dropped_gradients() -> None:
    stage = _stage("g", **{"run.fusion_warmup": 3})
    fusion = {id(p) for p in stage.module("G").fusion_parameters()}
    assert stage.warmup_frozen and all(id(p) not in fusion for p in stage.warmup_frozen)
    assert len(stage.warmup_frozen) + len(fusion) == len(list(stage.module("G").parameters()))


def test_one_step_under_bf16_autocast_and_channels_last_keeps_fp32_weights() -> None:
    cfg = validate(tiny_config("g", **{"run.amp": "bf16"}))
    torch.manual_seed(0)
    rt = Runtime(cfg=cfg, dist=DistContext(), amp_dtype=torch.bfloat16, channels_last=True,
                 data_shapes=SHAPES)
    stage = GANStage(cfg, rt)
    before = {n: p.clone() for n, p in stage.module("G").named_parameters()}
    values = stage.train_step(rt.to_device(_batch()))
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values())
    params = dict(stage.module("G").named_parameters())
    assert all(p.dtype == torch.float32 for p in params.values())
    assert any(not torch.equal(before[n], p) for n, p in params.items())
    assert params["f_HR_conv1.0.weight"].is_contiguous(memory_format=torch.channels_last)
