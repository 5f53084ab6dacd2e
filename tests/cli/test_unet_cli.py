"""`spsr train --variant u` end to end on a tiny patch store: trains, saves a desubpixel generator,
resumes bit-exactly, and stops with one line when the LPIPS backbone is missing offline. LPIPS
runs on a random AlexNet trunk here (``loss.perceptual_net=lpips_random``, a test-only setting)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _train_fixtures import make_store, one_thread  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from spsr.infer import load_model
from spsr.train.log import read_log
from spsr.train.state import load_state
from spsr_cli.app import app

RUNNER = CliRunner()
TINY_U = ["--nf", "8", "--nb", "2", "--set", "model.gc=4", "--batch-size", "2", "--amp", "off",
          "--no-channels-last", "--workers", "0", "--device", "cpu", "--quiet",
          "--set", "d.nf=4", "--set", "d.hidden=8", "--set", "unet.nf=4",
          "--set", "unet.cutmix_warmup=0", "--set", "unet.cutmix_prob=1"]


def _run(*args: object):
    return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_store(tmp_path_factory.mktemp("data"), n_images=2, val=0)


def test_variant_u_trains_from_the_cli_and_resumes_bit_exactly(store: Path, tmp_path: Path) -> None:
    lpips = ["--set", "loss.perceptual_net=lpips_random"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    r = _run("train", store, "--variant", "u", "-o", whole, "--iterations", 2, *lpips, *TINY_U)
    assert r.exit_code == 0, r.output
    r = _run("train", store, "--variant", "u", "-o", split, "--iterations", 1, *lpips, *TINY_U)
    assert r.exit_code == 0, r.output
    r = _run("train", "--resume", "-o", split, "--iterations", 2, "--quiet")
    assert r.exit_code == 0, r.output

    config = (whole / "config.toml").read_text()
    assert "[unet]" in config and 'perceptual_net = "lpips_random"' in config and "moa = true" in config
    (train,) = read_log(whole, "train")[-1:]
    for key in ("pixel", "perceptual", "grad_pixel", "branch", "gan", "feature_match", "grad_gan"):
        assert f"g/{key}" in train, key
    assert train["d_gan/cutmix_rate"] == 1.0

    a, b = load_state(whole / "state" / "last.pt"), load_state(split / "state" / "last.pt")
    assert a["iteration"] == b["iteration"] == 2
    assert set(a["networks"]) == {"G", "D", "D_grad"}
    for net in a["networks"]:
        for key, value in a["networks"][net].items():
            assert torch.equal(value, b["networks"][net][key]), f"{net}.{key}"

    loaded = load_model(whole)
    assert loaded.spec.extra == {"desubpixel_head": True}
    with torch.no_grad():
        assert loaded.model(torch.rand(1, 3, 8, 8)).sr.shape == (1, 3, 32, 32)


def test_missing_lpips_backbone_offline_is_one_line(store: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    r = _run("train", store, "--variant", "u", "-o", tmp_path / "u", *TINY_U)
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert "AlexNet ImageNet weights: download" in text and "alexnet-owt-7be5be79.pth" in text
    assert "--lpips-weights PATH" in text and "--perceptual none" in text
    assert "Traceback" not in r.output
    r = _run("train", store, "--variant", "u", "-o", tmp_path / "bad", "--lpips-weights",
             tmp_path / "nope.pth", *TINY_U)
    assert r.exit_code == 1 and "nope.pth" in r.output
