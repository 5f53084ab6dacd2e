"""Losses and the VGG discriminator: known values, forms, weights handling (random VGG19 only)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from conftest import trust_cached_file

from spsr.archs.discriminator_vgg import VGGDiscriminator
from spsr.errors import CheckpointError, ConfigError, MissingWeightsError
from spsr.losses.gan import make_adversarial_loss
from spsr.losses.gradient import GradientPixelLoss
from spsr.losses.perceptual import (
    PerceptualLoss,
    VGGFeatureExtractor,
    resolve_vgg19_weights,
    vgg19_features,
    vgg19_layer_index,
)
from spsr.losses.pixel import PixelLoss, pixel_distance
from spsr.ops import gradient_map


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_ragan_matches_hand_computed_bce_with_logits() -> None:
    real = torch.tensor([[1.0], [3.0]])
    fake = torch.tensor([[-1.0], [0.0]])
    loss = make_adversarial_loss("ragan")
    mr, mf = 2.0, -0.5
    # BCE(x, 1) = softplus(-x); BCE(x, 0) = softplus(x)
    d_expected = (
        sum(_softplus(-(r - mf)) for r in (1.0, 3.0)) / 2 + sum(_softplus(f - mr) for f in (-1.0, 0.0)) / 2
    ) / 2
    g_expected = (
        sum(_softplus(r - mf) for r in (1.0, 3.0)) / 2 + sum(_softplus(-(f - mr)) for f in (-1.0, 0.0)) / 2
    ) / 2
    assert loss.discriminator(real, fake).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.generator(real, fake).item() == pytest.approx(g_expected, rel=1e-6)


def test_vanilla_and_hinge_losses_known_values() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-0.5, 1.5])
    vanilla, hinge = make_adversarial_loss("vanilla"), make_adversarial_loss("hinge")
    assert vanilla.generator(real, fake).item() == pytest.approx((_softplus(0.5) + _softplus(-1.5)) / 2, rel=1e-6)
    # hinge D: mean(relu(1 - r)) + mean(relu(1 + f)) = (0 + 0.5)/2 + (0.5 + 2.5)/2
    assert hinge.discriminator(real, fake).item() == pytest.approx(0.25 + 1.5)
    assert hinge.generator(real, fake).item() == pytest.approx(-0.5)
    with pytest.raises(ConfigError, match="unknown GAN loss"):
        make_adversarial_loss("wgan")


def test_pixel_criteria_known_values() -> None:
    a, b = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    assert pixel_distance(a, b, "l1").item() == pytest.approx(1.0)
    assert pixel_distance(a, b, "l2").item() == pytest.approx(1.5)
    assert PixelLoss("charbonnier")(a, a).item() == pytest.approx(1e-3, rel=1e-3)
    with pytest.raises(ConfigError):
        PixelLoss("l3")


def test_gradient_loss_paper_form_is_l1_of_padding1_maps() -> None:
    g = torch.Generator().manual_seed(0)
    sr, hr = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    loss = GradientPixelLoss("paper")
    expected = F.l1_loss(gradient_map(sr, 1), gradient_map(hr, 1))
    assert loss(sr, hr).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.maps(sr).shape == (2, 3, 16, 16)


def test_gradient_loss_official_form_is_mse_of_padding2_maps() -> None:
    g = torch.Generator().manual_seed(0)
    sr, hr = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    loss = GradientPixelLoss("official")
    assert loss.maps(sr).shape == (2, 3, 18, 18)
    expected = F.mse_loss(gradient_map(sr, 2), gradient_map(hr, 2))
    assert loss(sr, hr).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_operator_is_fixed_and_gradients_reach_the_input() -> None:
    loss = GradientPixelLoss("paper")
    assert list(loss.parameters()) == []
    kernels = [b.clone() for b in loss.buffers()]
    sr = torch.rand(1, 3, 8, 8, requires_grad=True)
    loss(sr, torch.rand(1, 3, 8, 8)).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(kernels, loss.buffers(), strict=True))


def test_gradient_maps_stay_fp32_under_bf16_autocast() -> None:
    loss = GradientPixelLoss("paper")
    x = torch.rand(1, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        maps = loss.maps(x)
    assert maps.dtype == torch.float32
    assert torch.allclose(maps, gradient_map(x, 1))


def _torchvision_vgg19_features() -> torch.nn.Sequential:
    # torchvision's own builder of vgg19().features (skips the 140 M-parameter classifier).
    return torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"])


def test_vgg19_layer_names_map_to_torchvision_indices() -> None:
    features = _torchvision_vgg19_features()
    ours = vgg19_features()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in features.state_dict().items()
    ]
    assert vgg19_layer_index("conv5_4") == 34 and isinstance(features[34], torch.nn.Conv2d)
    assert vgg19_layer_index("relu5_4") == 35 and isinstance(features[35], torch.nn.ReLU)
    assert vgg19_layer_index("pool4") == 27 and isinstance(features[27], torch.nn.MaxPool2d)
    with pytest.raises(ConfigError):
        vgg19_layer_index("conv6_1")


def test_perceptual_loss_with_random_vgg19_ends_before_relu_and_normalises() -> None:
    extractor = VGGFeatureExtractor("conv5_4", pretrained=False)
    assert isinstance(extractor.features[-1], torch.nn.Conv2d)  # conv5_4, before its ReLU
    x = torch.rand(1, 3, 32, 32)
    manual = extractor.features((x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                                / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
    assert torch.allclose(extractor(x), manual)
    assert (extractor(x) < 0).any()  # no ReLU at the end


def test_perceptual_loss_with_random_vgg19_gradients_reach_sr_not_vgg() -> None:
    loss = PerceptualLoss(VGGFeatureExtractor("conv2_2", pretrained=False))
    hr = torch.rand(1, 3, 32, 32)
    assert loss(hr, hr).item() == 0.0
    sr = torch.rand(1, 3, 32, 32, requires_grad=True)
    value = loss(sr, hr)
    value.backward()
    assert value.item() > 0
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.extractor.training


def test_vgg19_weights_missing_offline_raise_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(MissingWeightsError, match=r"--vgg-weights PATH.*--perceptual none"):
        VGGFeatureExtractor()
    with pytest.raises(MissingWeightsError, match="not found"):
        resolve_vgg19_weights(tmp_path / "nope.pth")


def test_vgg19_weights_load_from_torchvision_cache_random_weights_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(3)
    reference = _torchvision_vgg19_features()
    state = {f"features.{k}": v for k, v in reference.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision file also has these
    cache = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    cache.parent.mkdir(parents=True)
    torch.save(state, cache)
    with pytest.raises(MissingWeightsError, match="cached copy is corrupt"):
        VGGFeatureExtractor("conv1_2")  # not torchvision's file: its SHA-256 does not match
    trust_cached_file(monkeypatch, "vgg19", cache)
    extractor = VGGFeatureExtractor("conv1_2")
    assert torch.equal(extractor.features[2].weight, reference[2].weight)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="VGG19"):
        VGGFeatureExtractor("conv1_2", weights=tmp_path / "bad.pth")


def test_vgg_discriminator_layout_at_paper_size() -> None:
    d = VGGDiscriminator()
    linear = d.classifier[0]
    assert (linear.in_features, linear.out_features) == (8192, 100)
    assert d.classifier[-1].out_features == 1
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in d.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 10 and len(bns) == 9
    assert d(torch.rand(2, 3, 128, 128)).shape == (2, 1)


def test_vgg_discriminator_input_size_is_configurable_and_checked() -> None:
    assert VGGDiscriminator(input_size=130).final_size == 4  # official padding-2 gradient maps
    tiny = VGGDiscriminator(nf=4, input_size=32, hidden=8)
    assert tiny.final_size == 1 and tiny(torch.rand(3, 3, 32, 32)).shape == (3, 1)
    with pytest.raises(ValueError, match="built for 32"):
        tiny(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError):
        VGGDiscriminator(input_size=16)
