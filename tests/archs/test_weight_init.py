"""Weight initialisation: the official code's scheme by default, PyTorch's on request (spsr.archs.init)."""

from __future__ import annotations

import math

import pytest
import torch
from _train_fixtures import TinyPairs, one_thread, tiny_config  # noqa: F401 (autouse fixture)
from safetensors.torch import load_file
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils import parametrize

from spsr.archs import ArchSpec, build_model
from spsr.archs.discriminator_sf import StructureFeatureDiscriminator
from spsr.archs.discriminator_unet import UNetDiscriminator
from spsr.archs.discriminator_vgg import VGGDiscriminator
from spsr.archs.init import init_discriminator, init_generator
from spsr.errors import ConfigError
from spsr.train.engine import Trainer


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (_ConvNd, nn.Linear))]


def _raw_weight(layer: nn.Module) -> torch.Tensor:
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations["weight"].original
    return layer.weight


def _normalised(net: nn.Module, std_of_fan_in) -> torch.Tensor:
    """Every layer's weights divided by the std its fan-in should give, pooled."""
    parts = []
    for layer in _layers(net):
        w = _raw_weight(layer).detach()
        parts.append((w / std_of_fan_in(w[0].numel())).flatten())
    return torch.cat(parts)


def _biases(net: nn.Module) -> torch.Tensor:
    return torch.cat([m.bias.detach().flatten() for m in _layers(net) if m.bias is not None])


@pytest.mark.parametrize("arch", ["spsr", "rrdb", "srresnet"])
def test_official_generator_init_is_kaiming_normal_times_0_1_with_zero_biases(arch: str) -> None:
    torch.manual_seed(0)
    spec = ArchSpec(arch=arch, nf=16, nb=2, gc=8)
    net = init_generator(build_model(spec), arch, "official")
    z = _normalised(net, lambda fan_in: 0.1 * math.sqrt(2.0 / fan_in))
    assert z.numel() > 20_000
    assert z.std().item() == pytest.approx(1.0, abs=0.03)
    assert abs(z.mean().item()) < 0.03
    assert torch.count_nonzero(_biases(net)) == 0
    if arch == "spsr":  # every part of the SPSR generator, incl. the gradient branch and fusion
        for name in ("b_fea_conv.0", "b_concat_1.0", "conv_w.0", "HR_conv1_new.0", "f_HR_conv1.0"):
            layer = net.get_submodule(name)
            std = 0.1 * math.sqrt(2.0 / layer.weight[0].numel())
            assert layer.weight.std().item() < 2 * std, name
            assert torch.count_nonzero(layer.bias) == 0, name
        kernel = net.get_g_nopadding.weight_h  # the fixed gradient kernels are untouched
        assert kernel.flatten().tolist() == [0, 0, 0, -1, 0, 1, 0, 0, 0]


def test_pytorch_scheme_and_edsr_keep_pytorchs_default_init() -> None:
    torch.manual_seed(0)
    built = build_model(ArchSpec(arch="spsr", nf=16, nb=2, gc=8))
    before = {k: v.clone() for k, v in built.state_dict().items()}
    net = init_generator(built, "spsr", "pytorch")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    # PyTorch's default: Kaiming-uniform with a = sqrt(5), i.e. std 1/sqrt(3·fan_in), ~2.4x the
    # official 0.1·sqrt(2/fan_in); biases drawn at random.
    z = _normalised(net, lambda fan_in: 1.0 / math.sqrt(3.0 * fan_in))
    assert z.std().item() == pytest.approx(1.0, abs=0.03)
    assert torch.count_nonzero(_biases(net)) > 0.99 * _biases(net).numel()

    torch.manual_seed(1)
    edsr = build_model(ArchSpec(arch="edsr", nf=16, nb=2))
    before = {k: v.clone() for k, v in edsr.state_dict().items()}
    init_generator(edsr, "edsr", "official")  # EDSR-PyTorch initialises nothing itself
    assert all(torch.equal(before[k], v) for k, v in edsr.state_dict().items())


@pytest.mark.parametrize("kind", ["vgg", "sf", "unet"])
def test_official_discriminator_init_is_kaiming_normal_scale_1(kind: str) -> None:
    torch.manual_seed(0)
    net: nn.Module = {
        "vgg": lambda: VGGDiscriminator(3, 16, 32, 32),
        "sf": lambda: StructureFeatureDiscriminator(32, 16, 16, 32),
        "unet": lambda: UNetDiscriminator(3, 16, (1, 2), True),
    }[kind]()
    for m in net.modules():  # disturb BatchNorm so the test sees it reset
        if isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 3.0)
            nn.init.constant_(m.bias, 1.0)
    init_discriminator(net, "official")
    z = _normalised(net, lambda fan_in: math.sqrt(2.0 / fan_in))
    assert z.std().item() == pytest.approx(1.0, abs=0.05)
    assert torch.count_nonzero(_biases(net)) == 0
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    if kind == "unet":  # the spectral norm was re-estimated for the new weights
        net.eval()
        for layer in _layers(net):
            w = layer.weight.detach().flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.1)  # stale: ≫ 1


def test_training_initialises_once_and_init_weights_keep_their_values(tmp_path) -> None:
    # A PSNR-oriented RRDB fills the SR branch; everything else starts from the official init.
    pre = tiny_config("psnr", **{"run.iterations": 2, "run.checkpoint_every": 2})
    Trainer(pre, tmp_path / "psnr", dataset=TinyPairs()).run()
    cfg = tiny_config("g", **{"run.iterations": 1, "run.checkpoint_every": 1, "optim.lr_g": 1e-12,
                              "optim.lr_d": 1e-12, "run.init": str(tmp_path / "psnr")})
    trainer = Trainer(cfg, tmp_path / "g", dataset=TinyPairs())
    trainer.run()
    psnr = load_file(tmp_path / "psnr" / "model.safetensors")
    g = trainer.generator.state_dict()
    assert torch.equal(g["model.0.weight"], psnr["model.0.weight"])
    # the pre-training also started from the official init (zero biases, two Adam steps of 2e-4 ago)
    assert psnr["model.0.bias"].abs().max().item() < 1e-3
    for name in ("b_fea_conv.0.bias", "conv_w.0.bias", "f_HR_conv1.0.bias", "HR_conv1_new.0.bias"):
        assert g[name].abs().max().item() < 1e-9, name
    for d in ("D", "D_grad"):
        assert _biases(trainer.rt.networks[d].module).abs().max().item() < 1e-9

    default = tiny_config("g", **{"run.iterations": 1, "optim.lr_g": 1e-12, "optim.lr_d": 1e-12,
                                  "model.weight_init": "pytorch", "d.weight_init": "pytorch"})
    trainer = Trainer(default, tmp_path / "pytorch", dataset=TinyPairs())
    trainer.run()
    assert _biases(trainer.generator).abs().min().item() > 0
    assert _biases(trainer.rt.networks["D"].module).abs().max().item() > 1e-3


def test_an_unknown_scheme_is_a_config_error(tmp_path) -> None:
    cfg = tiny_config("g", **{"model.weight_init": "xavier"})
    with pytest.raises(ConfigError, match="weight_init"):
        Trainer(cfg, tmp_path / "run", dataset=TinyPairs())
