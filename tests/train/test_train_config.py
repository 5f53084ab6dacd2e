"""Configuration: presets carry the papers' values, TOML round-trips, overrides, resume policy."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from spsr.errors import ConfigError
from spsr.train.config import (
    TrainConfig,
    apply_overrides,
    dump_toml,
    load_toml,
    parse_set_options,
    register_section,
    set_backbone,
    validate,
)
from spsr.train.resolve import resolve_config
from spsr.train.variants import preset, variants


def test_spsr_g_preset_has_the_published_values() -> None:
    cfg = preset("g")
    lo, o = cfg.loss, cfg.optim
    assert (cfg.stage, cfg.model.arch, cfg.model.backbone) == ("gan", "spsr", "rrdb")
    assert (cfg.model.nf, cfg.model.nb, cfg.model.gc, cfg.model.scale) == (64, 23, 32, 4)
    assert (lo.pixel, lo.perceptual, lo.gan) == (0.01, 1.0, 0.005)
    assert (lo.gradient_pixel, lo.gradient_gan, lo.branch) == (0.01, 0.005, 0.5)
    assert (lo.perceptual_layer, lo.gan_type, lo.gradient_form) == ("conv5_4", "ragan", "paper")
    assert (o.lr_g, o.lr_d, o.beta1, o.beta2, o.eps) == (1e-4, 1e-4, 0.9, 0.999, 1e-8)
    assert o.milestones == [50_000, 100_000, 200_000, 300_000] and o.gamma == 0.5
    assert (cfg.data.batch_size, cfg.run.fusion_warmup, cfg.run.ema) == (16, 0, 0.0)


def test_esrgan_and_psnr_presets() -> None:
    esrgan = preset("esrgan")
    assert esrgan.model.arch == "rrdb"
    assert (esrgan.loss.gradient_pixel, esrgan.loss.gradient_gan, esrgan.loss.branch) == (0, 0, 0)
    assert (esrgan.loss.pixel, esrgan.loss.perceptual, esrgan.loss.gan) == (0.01, 1.0, 0.005)
    psnr = preset("psnr")
    assert (psnr.stage, psnr.model.arch, psnr.loss.pixel, psnr.loss.perceptual_net) == ("psnr", "rrdb", 1.0, "none")
    assert psnr.optim.lr_g == 2e-4
    assert {"psnr", "esrgan", "g"} <= set(variants())
    with pytest.raises(ConfigError, match="unknown variant"):
        preset("zz")


def test_toml_round_trip(tmp_path) -> None:
    cfg = preset("g")
    apply_overrides(cfg, {"model.taps": "1,2,3,4", "loss.pixel": 0.5, "run.amp": "off"})
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(cfg))
    again = TrainConfig.from_dict(load_toml(path))
    assert again == cfg
    assert again.model.spec().taps == (1, 2, 3, 4)


def test_overrides_convert_strings_and_reject_unknown_keys() -> None:
    cfg = preset("g")
    apply_overrides(cfg, parse_set_options(["optim.milestones=10, 20", "run.channels_last=off",
                                            "run.iterations=1e3", "optim.lr_g=2e-4"]))
    assert cfg.optim.milestones == [10, 20] and cfg.run.channels_last == "off"
    assert cfg.run.iterations == 1000 and cfg.optim.lr_g == 2e-4
    with pytest.raises(ConfigError, match=r"did you mean 'loss\.pixel'"):
        apply_overrides(cfg, {"loss.pixle": 1})
    with pytest.raises(ConfigError, match="expected int"):
        apply_overrides(cfg, {"run.iterations": "many"})
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_set_options(["loss.pixel"])
    with pytest.raises(ConfigError, match="unknown configuration section"):
        apply_overrides(cfg, {"nosuch.key": 1})


def test_validate_rejects_bad_values() -> None:
    for key, value in [("run.amp", "fp8"), ("run.channels_last", "yes"), ("loss.pixel", -1.0), ("run.ema", 1.0),
                       ("optim.milestones", "20,10"), ("model.arch", "vdsr"), ("model.scale", 5),
                       ("data.lr_patch", -1), ("model.weight_init", "xavier"), ("d.weight_init", "normal"),
                       ("data.val_protocol", "matlab")]:
        cfg = preset("g")
        apply_overrides(cfg, {key: value})
        with pytest.raises(ConfigError):
            validate(cfg)


def test_backbone_swaps_the_sr_branch_or_the_plain_generator() -> None:
    g = preset("g")
    set_backbone(g, "edsr")
    assert (g.model.arch, g.model.backbone, g.model.nb) == ("spsr", "edsr", 16)
    e = preset("esrgan")
    set_backbone(e, "srresnet")
    assert (e.model.arch, e.model.nb) == ("srresnet", 16)


@dataclass
class _ExampleSection:
    tau: float = 64.0
    sampling: str = "cross"


def test_registered_sections_live_in_toml_and_overrides() -> None:
    register_section("example_ext", _ExampleSection)
    cfg = preset("g")
    apply_overrides(cfg, {"example_ext.tau": "32"})
    assert cfg.section("example_ext").tau == 32.0
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again.section("example_ext") == _ExampleSection(32.0, "cross")


def test_resolve_config_layers_and_resume_policy(tmp_path) -> None:
    toml = tmp_path / "my.toml"
    toml.write_text('variant = "esrgan"\n[loss]\npixel = 0.02\n[run]\niterations = 50\n')
    cfg = resolve_config(None, tmp_path / "run", config_file=toml, overrides={"run.iterations": 60, "run.seed": None})
    assert (cfg.variant, cfg.loss.pixel, cfg.run.iterations) == ("esrgan", 0.02, 60)

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.toml").write_text(dump_toml(cfg))
    resumed = resolve_config(None, run, resume=True, overrides={"run.iterations": 100, "data.workers": 0})
    assert resumed.run.iterations == 100 and resumed.loss.pixel == 0.02
    with pytest.raises(ConfigError, match=r"loss\.pixel cannot change when resuming"):
        resolve_config(None, run, resume=True, overrides={"loss.pixel": 0.5})
    with pytest.raises(ConfigError, match="trains variant 'esrgan'"):
        resolve_config("g", run, resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        resolve_config(None, tmp_path / "none", resume=True)
