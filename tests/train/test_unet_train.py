"""Variant u (the U-Net follow-up): the preset, each loss term with its weight, the U-Net D step with CutMix,
and initialisation of the desubpixel head (tiny networks; LPIPS with a random AlexNet trunk, the
test-only ``lpips_random``: no ImageNet weights are read)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from _train_fixtures import one_thread, tiny_config  # noqa: F401 (autouse fixture)

from spsr.archs import ArchSpec, SROutput, build_model
from spsr.checkpoints import save_weights
from spsr.errors import ConfigError
from spsr.losses.gan import make_adversarial_loss
from spsr.ops import gradient_map
from spsr.train.config import validate
from spsr.train.distributed import DistContext
from spsr.train.init_from import load_init
from spsr.train.runtime import Runtime
from spsr.train.stages.unet import UNetStage
from spsr.train.variants import preset

SHAPES = {"lr": (3, 8, 8), "hr": (3, 32, 32)}
# Random LPIPS trunk (test only), small U-Net D, CutMix in every step from the first.
TINY_U = {"loss.perceptual_net": "lpips_random", "unet.nf": 4, "unet.cutmix_warmup": 0,
          "unet.cutmix_prob": 1.0}


def _stage(shapes: dict[str, tuple[int, ...]] = SHAPES, **overrides: object) -> UNetStage:
    cfg = validate(tiny_config("u", **{**TINY_U, **overrides}))
    torch.manual_seed(0)
    return UNetStage(cfg, Runtime(cfg=cfg, dist=DistContext(), data_shapes=shapes, iteration=1))


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    return {"lr": F.avg_pool2d(hr, 4), "hr": hr}


def _step(stage: UNetStage, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    torch.manual_seed(5)  # the CutMix masks come from the global generator
    return stage.train_step(batch)


def test_u_preset_has_the_seed_003_values() -> None:
    cfg = preset("u")
    lo, u = cfg.loss, cfg.section("unet")
    assert (cfg.stage, cfg.model.arch, cfg.model.extra) == ("unet", "spsr", {"desubpixel_head": True})
    assert (lo.perceptual_net, lo.perceptual, lo.pixel, lo.pixel_criterion) == ("lpips", 0.001, 0.01, "l1")
    assert (lo.gan, lo.gradient_gan, lo.gradient_pixel, lo.branch) == (0.005, 0.005, 0.01, 0.5)
    assert (u.feature_matching, u.cutmix, u.cutmix_prob, u.spectral_norm) == (1.0, 1.0, 0.5, True)
    assert (u.nf, u.channel_mult) == (64, [1, 2, 4, 8])
    assert cfg.data.moa and "cutblur" in cfg.data.moa_ops
    assert cfg.optim.lr_g == 1e-4 and cfg.optim.milestones == [50_000, 100_000, 200_000, 300_000]
    assert cfg.run.iterations == 400_000 and cfg.data.batch_size == 16


def test_u_terms_match_independent_computations_and_scale_with_their_weights() -> None:
    batch = _batch()
    lr, hr = batch["lr"], batch["hr"]
    probe = _stage()
    assert probe.takes_upsampled_lr
    assert set(probe.rt.networks) == {"G", "lpips", "D_grad", "D"}
    out = probe.G(lr)
    assert isinstance(out, SROutput)
    sr = out.sr
    terms = probe.generator_terms(out, batch)
    lpips_net = probe.module("lpips").net
    expected = {
        "g/pixel": 0.01 * F.l1_loss(sr, hr),
        "g/perceptual": 0.001 * lpips_net(sr * 2 - 1, hr * 2 - 1).mean(),
        "g/grad_pixel": 0.01 * F.l1_loss(gradient_map(sr, 1), gradient_map(hr, 1)),
        "g/branch": 0.5 * F.l1_loss(out.grad, gradient_map(hr, 1)),
    }
    assert set(terms) == set(expected)
    for key, value in expected.items():
        assert terms[key].item() == pytest.approx(value.item(), rel=1e-5), key
    # Adversarial terms on copies of the discriminators, called in the order the step calls them
    # (spectral norm's power iteration advances on every call in training mode).
    d, dg = copy.deepcopy(probe.module("D")), copy.deepcopy(probe.module("D_grad"))
    ragan = make_adversarial_loss("ragan")
    with torch.no_grad():
        fake, real = d(sr), d(hr)
        gan = -0.005 * (fake.global_logit.mean() + fake.pixel_logits.mean())
        fm = sum(F.l1_loss(a, b) for a, b in zip(fake.features, real.features, strict=True))
        grad_gan = 0.005 * ragan.generator(dg(gradient_map(hr, 1)), dg(gradient_map(sr, 1)))

    base = _step(probe, batch)  # one full step
    assert base["g/gan"] == pytest.approx(gan.item(), rel=1e-4)
    assert base["g/feature_match"] == pytest.approx(1.0 * fm.item(), rel=1e-4)
    assert base["g/grad_gan"] == pytest.approx(grad_gan.item(), rel=1e-4)
    for key, value in expected.items():
        assert base[key] == pytest.approx(value.item(), rel=1e-5), key
    g_terms = [k for k in base if k.startswith("g/") and k != "g/total"]
    assert len(g_terms) == 7
    assert base["g/total"] == pytest.approx(sum(base[k] for k in g_terms), rel=1e-5)
    # D: hinge on both outputs plus the CutMix terms (drawn in every step here).
    assert base["d_gan/cutmix_rate"] == 1.0 and base["d_gan/cons"] > 0 and base["d_gan/mix"] > 0
    parts = base["d_gan/enc"] + base["d_gan/dec"] + base["d_gan/cons"] + base["d_gan/mix"]
    assert base["d_gan/loss"] == pytest.approx(parts, rel=1e-5)

    doubled = _step(_stage(**{
        "loss.gan": 0.01, "unet.feature_matching": 2.0, "loss.perceptual": 0.002,
        "loss.gradient_gan": 0.01, "loss.pixel": 0.02, "unet.cutmix": 2.0,
    }), batch)
    for key in ("g/gan", "g/feature_match", "g/perceptual", "g/grad_gan", "g/pixel"):
        assert doubled[key] == pytest.approx(2 * base[key], rel=1e-5), key
    for key in ("g/grad_pixel", "g/branch", "d_gan/enc", "d_gan/dec", "d_gan/cons", "d_gan/mix"):
        assert doubled[key] == pytest.approx(base[key], rel=1e-5), key
    parts = doubled["d_gan/enc"] + doubled["d_gan/dec"] + 2 * (doubled["d_gan/cons"] + doubled["d_gan/mix"])
    assert doubled["d_gan/loss"] == pytest.approx(parts, rel=1e-5)


def test_zero_weights_remove_their_networks_and_cutmix_ramps_up_the_same_on_every_process() -> None:
    stage = _stage(**{"loss.gan": 0.0, "unet.feature_matching": 0.0, "loss.perceptual_net": "none",
                      "loss.gradient_gan": 0.0})
    assert set(stage.rt.networks) == {"G"}
    values = stage.train_step(_batch())
    assert set(values) == {"g/pixel", "g/grad_pixel", "g/branch", "g/total"}

    ramp = _stage(**{"loss.perceptual_net": "none", "unet.cutmix_warmup": 1000,
                     "unet.cutmix_prob": 0.5})
    assert [ramp.cutmix_probability(i) for i in (0, 250, 1000, 10**6)] == [0.0, 0.125, 0.5, 0.5]
    ramp.unet.cutmix = 0.0
    assert ramp.cutmix_probability(10**6) == 0.0
    # Whether an iteration uses CutMix depends on the seed and iteration only, never on a
    # process's own generators: under DDP every process must call D as often (buffer broadcasts).
    coins = [ramp.cutmix_coin(i) for i in range(1, 6)]
    torch.manual_seed(123)
    assert [ramp.cutmix_coin(i) for i in range(1, 6)] == coins and len(set(coins)) == 5


def test_u_net_d_needs_crops_on_its_grid_and_the_step_takes_hr_size_inputs() -> None:
    with pytest.raises(ConfigError, match="multiples of 16"):
        _stage({"lr": (3, 10, 10), "hr": (3, 40, 40)}, **{"loss.perceptual_net": "none"})
    stage = _stage(**{"loss.perceptual_net": "none"})
    batch = _batch()
    up = {"lr": F.interpolate(batch["lr"], scale_factor=4, mode="nearest"), "hr": batch["hr"]}
    with torch.no_grad():  # an HR-size input (MoA's) is the same as its LR image
        torch.testing.assert_close(stage.G(up["lr"], upsampled=True).sr, stage.G(batch["lr"]).sr)
    assert all(math.isfinite(v) for v in _step(stage, up).values())


@pytest.mark.parametrize("backbone", ["rrdb", "edsr"])
def test_init_spreads_a_plain_checkpoint_into_the_desubpixel_head(tmp_path, backbone: str) -> None:
    torch.manual_seed(0)
    size = {"nf": 8, "nb": 2, "gc": 4, "scale": 4}
    plain_spec = ArchSpec(arch=backbone, **size)
    plain = build_model(plain_spec).eval()
    save_weights(tmp_path / "plain.safetensors", plain, plain_spec)
    spec = ArchSpec(arch="spsr", backbone=backbone, extra={"desubpixel_head": True}, **size)
    model = build_model(spec).eval()
    keys = load_init(model, spec, tmp_path / "plain.safetensors")
    head = "model.0.weight" if backbone == "rrdb" else "model.head.0.weight"
    assert head in keys
    lr = torch.rand(1, 3, 6, 5)
    unshuffled = F.pixel_unshuffle(F.interpolate(lr, scale_factor=4, mode="nearest"), 4)
    with torch.no_grad():
        _, features = model.model.forward_features(unshuffled, ())
        if backbone == "rrdb":
            expected = plain.model[:-1](lr)
        else:
            _, expected = plain.forward_features(lr, ())
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)


def test_init_from_a_plain_spsr_spreads_both_input_convs(tmp_path) -> None:
    torch.manual_seed(0)
    size = {"nf": 8, "nb": 2, "gc": 4, "scale": 2}
    plain_spec = ArchSpec(arch="spsr", **size)
    plain = build_model(plain_spec)
    save_weights(tmp_path / "g.safetensors", plain, plain_spec)
    spec = ArchSpec(arch="spsr", extra={"desubpixel_head": True}, **size)
    model = build_model(spec)
    load_init(model, spec, tmp_path / "g.safetensors")
    src, own = plain.state_dict(), model.state_dict()
    for key in own:
        if key in ("model.0.weight", "b_fea_conv.0.weight"):
            assert own[key].shape[1] == 12
            torch.testing.assert_close(own[key], src[key].repeat_interleave(4, dim=1) / 4)
        else:
            assert torch.equal(own[key], src[key]), key
    # And a desubpixel checkpoint loads into the same architecture unchanged.
    save_weights(tmp_path / "u.safetensors", model, spec)
    again = build_model(spec)
    load_init(again, spec, tmp_path / "u.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), own.values(), strict=True))
