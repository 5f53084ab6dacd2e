"""`spsr train --variant p|j|r|vgg|resnet` end to end on a tiny patch store: the structure loss
replaces the image / gradient adversarial and gradient pixel terms (TPAMI 2021 eq. 17), the NSE
comes from `--nse`, resume keeps the extractor it started with, and user errors are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _text import flat
from _train_fixtures import make_store, one_thread  # noqa: F401
from safetensors.torch import load_file
from typer.testing import CliRunner

from spsr.nse.extractor import NeuralStructureExtractor
from spsr.nse.files import save_nse
from spsr.train.config import TrainConfig, load_toml
from spsr.train.log import read_log
from spsr.train.state import last_state_path, load_state
from spsr_cli.app import app

RUNNER = CliRunner()
TINY = ["--nf", "8", "--nb", "2", "--set", "model.gc=4", "--set", "d.nf=4", "--set", "d.hidden=8",
        "--batch-size", "2", "--perceptual", "none", "--amp", "off", "--no-channels-last",
        "--workers", "0", "--device", "cpu", "--quiet"]


def _run(*args: object):
    return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("data"))  # 32×32 HR patches


def _nse_run(folder: Path, task: str, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    save_nse(folder / "nse.safetensors", NeuralStructureExtractor(mid_channels=8), {"task": task})
    return folder


@pytest.mark.parametrize(
    ("variant", "extra"),
    [
        ("p", ["--nse", "contrastive"]),
        ("j", ["--nse", "jigsaw"]),
        ("r", []),
        ("vgg", ["--set", "structure.random_backbone=true"]),  # random VGG19: no ImageNet file here
        ("resnet", ["--set", "structure.random_backbone=true"]),  # random ResNet18, likewise
    ],
)
def test_every_structure_variant_trains_from_the_cli(
    store: Path, tmp_path: Path, variant: str, extra: list[str]
) -> None:
    extra = [str(_nse_run(tmp_path / e, e)) if e in ("contrastive", "jigsaw") else e for e in extra]
    run = tmp_path / variant
    r = _run("train", store, "--variant", variant, "-o", run, "--iterations", 2, *extra, *TINY)
    assert r.exit_code == 0, r.output
    record = read_log(run, "train")[-1]
    assert {"g/pixel", "g/branch", "g/structure", "g/sf_gan", "d_sf_gan/loss"} <= set(record)
    assert not {"g/gan", "g/grad_pixel", "g/grad_gan"} & set(record)  # removed by eq. 17
    assert all(np.isfinite(v) for k, v in record.items() if k.startswith(("g/", "d_")))
    cfg = TrainConfig.from_dict(load_toml(run / "config.toml"))
    assert (cfg.stage, cfg.section("structure").extractor) == ("structure", variant)
    assert (cfg.section("structure").beta, cfg.section("structure").gamma) == (1e-7, 0.1)
    assert (run / "model.safetensors").is_file()


def test_zero_weights_remove_the_structure_terms(store: Path, tmp_path: Path) -> None:
    run = tmp_path / "r"
    r = _run("train", store, "--variant", "r", "-o", run, "--iterations", 1,
             "--set", "structure.beta=0", "--set", "structure.gamma=0", *TINY)
    assert r.exit_code == 0, r.output
    record = read_log(run, "train")[-1]
    assert not any("structure" in k or "sf_gan" in k for k in record)
    assert "D_SF" not in load_state(last_state_path(run))["networks"]


def test_resume_keeps_the_extractor_the_run_started_with(store: Path, tmp_path: Path) -> None:
    nse = _nse_run(tmp_path / "nse", "contrastive")
    common = ["--variant", "p", "--nse", nse, *TINY]
    assert _run("train", store, "-o", tmp_path / "straight", "--iterations", 2, *common).exit_code == 0
    assert _run("train", store, "-o", tmp_path / "split", "--iterations", 1, *common).exit_code == 0
    _nse_run(nse, "contrastive", seed=7)  # the NSE file changes under the run
    r = _run("train", "-o", tmp_path / "split", "--resume", "--iterations", 2, "--quiet")
    assert r.exit_code == 0, r.output
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variant", "p"], "needs a structure extractor trained by contrastive: run `spsr "
         "pretrain-nse --task contrastive` first (writes runs/nse-contrastive), or give --nse"),
        (["--variant", "j", "--nse", "CONTRASTIVE"], "trained by jigsaw, but"),
        (["--variant", "p", "--nse", "MISSING"], "no neural structure extractor"),
        (["--variant", "vgg"], "VGG19 ImageNet weights: download"),
        (["--variant", "resnet", "--perceptual", "none"], "ResNet18 ImageNet weights: download"),
        (["--variant", "r", "--set", "structure.reduction=max"], "reduction"),
    ],
)
def test_structure_variant_errors_are_one_line(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    monkeypatch.chdir(tmp_path)  # a working folder without runs/nse-contrastive
    nse = _nse_run(tmp_path / "nse", "contrastive")
    args = [str(nse) if a == "CONTRASTIVE" else str(tmp_path / "no") if a == "MISSING" else a
            for a in args]
    r = _run("train", store, "-o", tmp_path / "run", "--iterations", 1, *args, *TINY)
    assert r.exit_code == 1
    assert message in flat(r.stderr) and "Traceback" not in r.stderr
