"""Structure loss (TPAMI 2021 eqs. 14–16), its extractors (App. C) and NSE files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from spsr.archs.discriminator_sf import StructureFeatureDiscriminator
from spsr.errors import CheckpointError, ConfigError, MissingWeightsError
from spsr.losses.gan import make_adversarial_loss
from spsr.losses.structure import (
    StructurePixelLoss,
    build_structure_extractor,
    random_nse,
    resnet18_conv4_2,
    structure_generator_loss,
)
from spsr.nse.extractor import NeuralStructureExtractor
from spsr.nse.files import load_nse, nse_metadata, save_nse
from spsr.train.runtime import frozen


def _tiny_generator() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


def test_structure_loss_gradient_reaches_generator_and_never_the_frozen_nse() -> None:
    torch.manual_seed(0)
    nse = NeuralStructureExtractor(mid_channels=8)
    extractor = build_structure_extractor("p", nse=nse)
    generator = _tiny_generator()
    d_sf = StructureFeatureDiscriminator(32, 8, nf=8, hidden=8)
    lr = torch.rand(2, 3, 32, 32, requires_grad=True)
    hr = torch.rand(2, 3, 32, 32)
    with frozen(d_sf):
        terms = structure_generator_loss(
            extractor, d_sf, make_adversarial_loss("ragan"), generator(lr), hr, beta=1e-3, gamma=0.1
        )
        (terms["pixel"] + terms["adversarial"]).backward()
    assert all(p.grad is None for p in nse.parameters())
    assert not any(p.requires_grad for p in extractor.parameters())
    assert all(p.grad is None for p in d_sf.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    assert lr.grad is not None and lr.grad.abs().sum() > 0
    assert not terms["hr_features"].requires_grad
    assert terms["sr_features"].shape == (2, 32, 8, 8)


def test_structure_pixel_loss_values() -> None:
    torch.manual_seed(1)
    extractor = build_structure_extractor("r")
    sr, hr = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    expected = (extractor(sr) - extractor(hr)).abs()
    total = StructurePixelLoss(extractor, beta=1e-7)(sr, hr)
    assert torch.allclose(total, 1e-7 * expected.sum())
    mean = StructurePixelLoss(extractor, beta=2.0, reduction="mean")(sr, hr)
    assert torch.allclose(mean, 2.0 * expected.mean())
    assert float(StructurePixelLoss(extractor)(hr, hr)) == 0.0
    with pytest.raises(ConfigError, match="reduction"):
        StructurePixelLoss(extractor, reduction="max")


def test_extractor_stays_frozen_in_eval_mode() -> None:
    extractor = build_structure_extractor("r")
    extractor.train()
    assert not extractor.training and not extractor.net.training


def test_random_nse_is_reproducible_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a, b = random_nse(), random_nse()
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(random_nse(1).conv_in.weight, a.conv_in.weight)


def test_nse_file_round_trip_and_run_folder(tmp_path: Path) -> None:
    nse = NeuralStructureExtractor(mid_channels=16)
    save_nse(tmp_path / "nse.safetensors", nse, {"task": "jigsaw"})
    for source in (tmp_path, tmp_path / "nse.safetensors"):
        loaded = load_nse(source)
        assert loaded.config() == nse.config()
        x = torch.rand(1, 3, 32, 32)
        assert torch.equal(loaded(x), nse(x))
    assert nse_metadata(tmp_path)["task"] == "jigsaw"
    extractor = build_structure_extractor("j", nse=tmp_path)
    assert (extractor.channels, extractor.stride) == (32, 4)


def test_nse_files_that_are_not_nse_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a neural structure extractor"):
        load_nse(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="readable"):
        load_nse(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="pretrain-nse"):
        load_nse(tmp_path / "missing")
    with pytest.raises(ConfigError, match="--nse"):
        build_structure_extractor("p")
    with pytest.raises(ConfigError, match="unknown structure extractor"):
        build_structure_extractor("alex")


def test_vgg_structure_extractor_conv5_4_with_random_backbone() -> None:
    extractor = build_structure_extractor("vgg", pretrained=False)
    features = extractor(torch.rand(1, 3, 64, 64))
    assert features.shape == (1, 512, 4, 4)
    assert (extractor.channels, extractor.stride) == (512, 16)
    assert bool((features < 0).any())  # conv5_4 before its ReLU
    assert isinstance(extractor.net.features[-1], nn.Conv2d)


def test_resnet_structure_extractor_conv4_2_loads_a_random_resnet18_file(tmp_path: Path) -> None:
    torch.manual_seed(2)
    reference = resnet18().eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pth")
    extractor = build_structure_extractor("resnet", weights=tmp_path / "resnet18.pth")
    x = torch.rand(1, 3, 64, 64)
    normalised = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    r = reference
    with torch.no_grad():
        expected = r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(normalised)))))))
    features = extractor(x)
    assert features.shape == (1, 256, 4, 4) and (extractor.channels, extractor.stride) == (256, 16)
    assert torch.allclose(features, expected, atol=1e-5)


def test_imagenet_extractors_without_weights_raise_missing_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_cache"))
    with pytest.raises(MissingWeightsError, match=r"resnet18-f37072fd\.pth"):
        build_structure_extractor("resnet")
    with pytest.raises(MissingWeightsError, match="vgg19"):
        build_structure_extractor("vgg")
    with pytest.raises(MissingWeightsError, match="not found"):
        resnet18_conv4_2(tmp_path / "nope.pth")
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="is a text file"):
        resnet18_conv4_2(tmp_path / "bad.pth")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="ResNet18"):
        resnet18_conv4_2(tmp_path / "other.pth")
