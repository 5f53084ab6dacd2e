"""`spsr train --init` with upstream checkpoints: EDSR-PyTorch into `--backbone edsr`, BasicSR
MSRResNet into `--backbone srresnet`, Real-ESRGAN-style RRDBNet into the default SPSR-G."""

from __future__ import annotations

from pathlib import Path

import _upstream_layouts as up
import pytest
import torch
from _train_fixtures import make_store, one_thread  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from spsr.train.config import load_toml
from spsr_cli.app import app

RUNNER = CliRunner()
BASE = ["--nf", "8", "--nb", "2", "--set", "model.gc=4", "--batch-size", "2", "--amp", "off",
        "--no-channels-last", "--workers", "0", "--device", "cpu", "--quiet", "--iterations", "1"]
TINY = [*BASE, "--set", "loss.perceptual_net=vgg_random", "--set", "loss.perceptual_layer=conv1_2",
        "--set", "d.nf=4"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("backbone,state", [
    ("edsr", lambda: up.edsr_pytorch_state(8, 2, 4)),
    ("srresnet", lambda: {"params": up.msrresnet_state(8, 2, 4)}),
    ("rrdb", lambda: {"params_ema": up.rrdb_state("basicsr", 8, 2, 4, 4)}),
])
def test_train_init_accepts_upstream_checkpoints(store: Path, tmp_path: Path, backbone: str, state) -> None:
    torch.save(state(), tmp_path / "upstream.pth")
    run = tmp_path / "run"
    r = RUNNER.invoke(app, [str(a) for a in ("train", store, "--variant", "g", "--backbone", backbone, "-o", run,
                                             "--init", tmp_path / "upstream.pth", *TINY)])
    assert r.exit_code == 0, r.output
    if backbone == "edsr":  # what detection assumed is said once, not buried
        assert "--init upstream.pth: res_scale is not stored" in " ".join(r.output.split())
    cfg = load_toml(run / "config.toml")
    assert cfg["model"]["backbone"] == backbone and cfg["run"]["init"].endswith("upstream.pth")


def test_edsr_pytorch_initialises_a_plain_edsr_pretraining(store: Path, tmp_path: Path) -> None:
    torch.save(up.edsr_pytorch_state(8, 2, 4), tmp_path / "edsr_x4.pt")
    run = tmp_path / "psnr_edsr"
    r = RUNNER.invoke(app, [str(a) for a in ("pretrain-psnr", store, "--arch", "edsr", "-o", run,
                                             "--init", tmp_path / "edsr_x4.pt", *BASE)])
    assert r.exit_code == 0, r.output
    assert load_toml(run / "config.toml")["model"]["arch"] == "edsr"
