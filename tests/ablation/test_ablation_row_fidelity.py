"""The ablation rows change what their names say, and a dry run finds rows that cannot start
(#28 items 3-4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _text import flat
from _train_fixtures import make_store, one_thread  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from spsr.ablation import AblationInputs, get_preset, plan_grid
from spsr.ablation.plan import TRAIN, UNAVAILABLE
from spsr.archs import ArchSpec, build_model
from spsr.archs.discriminator_unet import UNetDiscriminator
from spsr.checkpoints.io import save_weights
from spsr.errors import ConfigError
from spsr.losses.unet_gan import unet_d_losses, unet_g_loss
from spsr_cli.app import app


def _weights(path: Path, arch: str, scale: int = 4, **extra: object) -> str:
    spec = ArchSpec(arch=arch, nf=8, nb=2, gc=4, scale=scale, extra=dict(extra))
    return str(save_weights(path, build_model(spec), spec))


def _u_rows(tmp_path: Path) -> dict[str, object]:
    init = _weights(tmp_path / "u_psnr.safetensors", "spsr", desubpixel_head=True)
    inputs = AblationInputs(iterations=3, inits={"default": init})
    return {p.config.name: p.train_config for p in plan_grid(get_preset("u-components"),
                                                              str(tmp_path / "u"), inputs)}


def test_u_components_w_o_gb_keeps_the_desubpixel_head_and_moa(tmp_path: Path) -> None:
    rows = _u_rows(tmp_path)
    full, no_gb = rows["Ours"], rows["Ours w/o GB"]
    assert no_gb.stage == full.stage == "unet"
    assert (no_gb.model.arch, no_gb.loss.branch) == ("rrdb", 0.0)
    assert no_gb.model.extra == full.model.extra == {"desubpixel_head": True}
    assert no_gb.model.spec().takes_upsampled_lr  # MoA hands it HR-size input: CutBlur stays
    assert no_gb.data.moa and no_gb.data.moa_ops == full.data.moa_ops
    for key in ("pixel", "perceptual", "gradient_pixel", "gradient_gan", "gan", "perceptual_net"):
        assert getattr(no_gb.loss, key) == getattr(full.loss, key), key
    assert no_gb.section("unet") == full.section("unet")


def test_u_components_w_o_unet_drops_only_the_decoder(tmp_path: Path) -> None:
    rows = _u_rows(tmp_path)
    full, no_unet = rows["Ours"], rows["Ours w/o U-Net"]
    assert no_unet.stage == "unet" and no_unet.model == full.model and no_unet.loss == full.loss
    assert no_unet.data.moa and no_unet.model.spec().takes_upsampled_lr
    u, u_full = no_unet.section("unet"), full.section("unet")
    assert (u.decoder, u.cutmix) == (False, 0.0) and u_full.decoder
    assert u.feature_matching == u_full.feature_matching == 1.0  # eq. 7 stays, on the encoder


def test_an_encoder_only_unet_discriminator_has_no_decoder_and_scores_globally() -> None:
    torch.manual_seed(0)
    full = UNetDiscriminator(3, 4, (1, 2))
    encoder = UNetDiscriminator(3, 4, (1, 2), decoder=False)
    assert not any(k.startswith(("decoder.", "pixel_head.")) for k in encoder.state_dict())
    assert {k for k in full.state_dict() if k.startswith(("encoder.", "global_head."))} == set(
        encoder.state_dict())
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    out, ref = encoder(x), encoder(y)
    assert out.pixel_logits is None and len(out.features) == 2  # the encoder's blocks
    assert torch.equal(unet_g_loss(out), -out.global_logit.mean())
    terms = unet_d_losses(ref, out)
    assert float(terms["d_dec"].detach()) == 0.0 and float(terms["d_enc"].detach()) > 0


def test_cutmix_without_the_decoder_is_a_config_error() -> None:
    from spsr.train.stages.unet import UNetConfig, _check

    with pytest.raises(ConfigError, match="CutMix terms need the U-Net decoder"):
        _check(UNetConfig(decoder=False))
    _check(UNetConfig(decoder=False, cutmix=0.0))


def test_g_components_w_o_gb_starts_from_an_spsr_g_init(tmp_path: Path) -> None:
    init = _weights(tmp_path / "psnr.safetensors", "spsr")
    inputs = AblationInputs(iterations=3, inits={"default": init})
    plan = plan_grid(get_preset("g-components"), str(tmp_path / "g"), inputs)
    assert [(p.config.name, p.action) for p in plan] == [(p.config.name, TRAIN) for p in plan]


def test_dry_run_marks_rows_that_cannot_start(tmp_path: Path) -> None:
    # An SPSR-G with the bicubic image skip has no RRDBNet counterpart: the RRDBNet rows (ESRGAN,
    # w/o GB) cannot start from it, the SPSR-G rows can; found at planning, before any training.
    init = _weights(tmp_path / "skip.safetensors", "spsr", image_skip=True)
    inputs = AblationInputs(iterations=3, inits={"default": init})
    plan = {p.config.name: p for p in plan_grid(get_preset("g-components"), str(tmp_path / "g"),
                                                inputs)}
    for name in ("ESRGAN", "SPSR-G w/o GB"):
        assert plan[name].action == UNAVAILABLE
        assert plan[name].problem.startswith("init: ") and "image_skip" in plan[name].problem
    assert plan["SPSR-G"].action == TRAIN
    # Data that is not a patch store, or of another scale than the rows' generators.
    bad = tmp_path / "notes.h5"
    bad.write_text("not a store")
    store = str(make_store(tmp_path / "x4"))
    for data, scale, message in ((str(bad), 4, "data: "), (store, 2, "is a x4 store")):
        rrdb = _weights(tmp_path / f"rrdb_x{scale}.safetensors", "rrdb", scale=scale)
        inputs = AblationInputs(data=data, iterations=3, inits={"default": rrdb})
        planned = plan_grid(get_preset("g-components"), str(tmp_path / "d"), inputs)
        assert all(p.action == UNAVAILABLE and message in p.problem for p in planned)


def test_ablate_dry_run_prints_why_a_row_cannot_start(tmp_path: Path) -> None:
    init = _weights(tmp_path / "skip.safetensors", "spsr", image_skip=True)
    r = CliRunner().invoke(
        app, ["ablate", "--preset", "g-components", "--init", init, "--iterations", "3",
              "-o", str(tmp_path / "g"), "--dry-run", "--json"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["SPSR-G w/o GB"]["action"] == "unavailable"
    assert "image_skip" in flat(rows["SPSR-G w/o GB"]["problem"])
    assert rows["SPSR-G"]["action"] == "train"
