"""``--init`` decides the generator: its size, backbone and options come from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _text import flat
from _train_fixtures import make_store, one_thread  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from spsr.archs import ArchSpec, build_model
from spsr.errors import ConfigError
from spsr.infer import load_model, save_weights
from spsr.train.resolve import resolve_config
from spsr_cli.app import app


def _weights(path: Path, spec: ArchSpec) -> Path:
    torch.manual_seed(0)
    save_weights(path, build_model(spec), spec)
    return path


def test_spsr_init_gives_its_whole_architecture(tmp_path: Path) -> None:
    src = ArchSpec("spsr", 4, nf=8, nb=3, gc=4, backbone="rrdb", taps=(1, 2, 3),
                   extra={"image_skip": True})
    init = _weights(tmp_path / "spsr.safetensors", src)
    cfg = resolve_config("g", tmp_path / "run", overrides={"run.init": str(init)})
    m = cfg.model
    assert (m.arch, m.backbone, m.scale, m.nf, m.nb, m.gc, m.taps) == ("spsr", "rrdb", 4, 8, 3, 4, [1, 2, 3])
    assert m.extra == {"image_skip": True}
    assert cfg.model.spec() == src  # exactly the checkpoint's generator: it loads strictly


def test_plain_backbone_init_fills_the_sr_branch_of_an_spsr_variant(tmp_path: Path) -> None:
    init = _weights(tmp_path / "edsr.safetensors", ArchSpec("edsr", 4, nf=8, nb=2))
    cfg = resolve_config("g", tmp_path / "run", overrides={"run.init": str(init)})
    assert (cfg.model.arch, cfg.model.backbone, cfg.model.nf, cfg.model.nb) == ("spsr", "edsr", 8, 2)
    # A plain variant takes the plain generator as it is.
    cfg = resolve_config("esrgan", tmp_path / "run2", overrides={"run.init": str(init)})
    assert (cfg.model.arch, cfg.model.nf, cfg.model.nb) == ("edsr", 8, 2)


def test_variant_options_stay_and_matching_flags_are_fine(tmp_path: Path) -> None:
    init = _weights(tmp_path / "g.safetensors", ArchSpec("spsr", 4, nf=8, nb=2, gc=4))
    cfg = resolve_config("u", tmp_path / "run",
                         overrides={"run.init": str(init), "model.nf": 8, "model.gc": "4"})
    assert cfg.model.extra.get("desubpixel_head") is True and cfg.model.nf == 8 and cfg.model.nb == 2


@pytest.mark.parametrize(
    ("overrides", "arch", "backbone", "needle"),
    [
        ({"model.nf": 64}, None, None, "--nf 64 conflicts with the --init checkpoint"),
        ({"model.nb": 5}, None, None, "--nb 5 conflicts"),
        ({"model.gc": "32"}, None, None, "model.gc=32 conflicts"),
        ({}, None, "edsr", "--backbone edsr conflicts"),
        ({}, "rrdb", None, "--arch rrdb conflicts"),
    ],
)
def test_a_contradicting_flag_is_one_clear_error(
    tmp_path: Path, overrides: dict, arch: str | None, backbone: str | None, needle: str
) -> None:
    init = _weights(tmp_path / "g.safetensors", ArchSpec("spsr", 4, nf=8, nb=2, gc=4))
    with pytest.raises(ConfigError) as err:
        resolve_config("g", tmp_path / "run", overrides={"run.init": str(init), **overrides},
                       arch=arch, backbone=backbone)
    message = str(err.value)
    assert needle in message and "\n" not in message and "nf 8" in message


def test_cli_train_init_needs_no_size_flags(tmp_path: Path) -> None:
    store = make_store(tmp_path / "data")
    init = _weights(tmp_path / "psnr.safetensors", ArchSpec("rrdb", 4, nf=8, nb=2, gc=4))
    common = ["--iterations", "1", "--batch-size", "2", "--amp", "off", "--no-channels-last",
              "--workers", "0", "--device", "cpu", "--quiet", "--set", "loss.perceptual_net=vgg_random",
              "--set", "loss.perceptual_layer=conv1_2", "--set", "d.nf=4"]
    runner = CliRunner()
    run = tmp_path / "g"
    r = runner.invoke(app, ["train", str(store), "--variant", "g", "-o", str(run), "--init", str(init), *common])
    assert r.exit_code == 0, r.output
    spec = load_model(run).spec
    assert (spec.arch, spec.backbone, spec.nf, spec.nb, spec.gc) == ("spsr", "rrdb", 8, 2, 4)
    r = runner.invoke(app, ["train", str(store), "--variant", "g", "-o", str(tmp_path / "bad"),
                            "--init", str(init), "--nf", "64", *common])
    assert r.exit_code == 1 and "--nf 64 conflicts" in flat(r.output) and "Traceback" not in r.output
