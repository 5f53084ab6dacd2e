"""LPIPS loss and the shared LPIPS loader (random AlexNet trunks: no ImageNet weights here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _alexnet import random_alexnet_features
from conftest import trust_cached_file

from spsr.errors import CheckpointError, MissingWeightsError
from spsr.losses.lpips_loss import LPIPSLoss
from spsr.losses.lpips_net import (
    ALEXNET_FILENAME,
    default_alexnet_path,
    find_alexnet_weights,
    load_lpips_alex,
    lpips_distance,
)


@pytest.fixture(scope="module")
def random_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return load_lpips_alex(random_backbone=True)


def test_missing_alexnet_is_a_clear_error_and_nothing_is_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert default_alexnet_path() == tmp_path / "hub" / "checkpoints" / ALEXNET_FILENAME
    with pytest.raises(MissingWeightsError, match="TORCH_HOME"):
        load_lpips_alex()
    with pytest.raises(MissingWeightsError, match=r"nowhere\.pth"):
        LPIPSLoss(weights=tmp_path / "nowhere.pth")
    assert not any(tmp_path.rglob("*.pth"))


def test_alexnet_from_torch_home_cache_with_a_random_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = tmp_path / "hub" / "checkpoints" / ALEXNET_FILENAME
    cached.parent.mkdir(parents=True)
    state = random_alexnet_features(cached)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="cached copy is corrupt"):
        find_alexnet_weights()  # a random file is not torchvision's: its SHA-256 does not match
    trust_cached_file(monkeypatch, "alexnet", cached)
    assert find_alexnet_weights() == cached
    net = load_lpips_alex()
    torch.testing.assert_close(net.state_dict()["net.slice1.0.weight"], state["features.0.weight"])
    torch.testing.assert_close(net.state_dict()["net.slice5.10.bias"], state["features.10.bias"])
    assert not any(p.requires_grad for p in net.parameters()) and not net.training


def test_unreadable_alexnet_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    bad = tmp_path / "alex.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="is a text file"):
        load_lpips_alex(bad)
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_lpips_alex(bad)
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a torchvision AlexNet"):
        load_lpips_alex(bad)


def test_distance_maps_unit_range_to_minus_one_one_random_backbone(
    random_net: torch.nn.Module,
) -> None:
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ours = lpips_distance(random_net, a, b)
        theirs = random_net(a, b, normalize=True).flatten()
        unmapped = random_net(a, b).flatten()
    assert ours.shape == (2,)
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours, unmapped)


def test_lpips_loss_is_zero_on_identical_images_and_differentiable_random_backbone() -> None:
    torch.manual_seed(0)
    loss_fn = LPIPSLoss(random_backbone=True)
    hr = torch.rand(2, 3, 32, 32)
    assert loss_fn(hr, hr).item() == pytest.approx(0.0, abs=1e-7)
    sr = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss_fn.train()  # the owner's train mode must not switch LPIPS dropout on
    first, second = loss_fn(sr, hr), loss_fn(sr, hr)
    assert first.item() > 0 and first.item() == second.item()
    first.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
