"""Weight initialisation schemes of the networks this toolkit trains.

``official`` (the default of every training stage) initialises as the reference code of each
network does; ``pytorch`` keeps PyTorch's own defaults (Kaiming-uniform with a = √5 and random
biases), which start every layer about 4× larger than the generators' official scheme.

=====================  ==================================================================
network                ``official``
=====================  ==================================================================
SPSR generator (any    every convolution (both branches, fusion block, ``HR_conv1_new``,
backbone), RRDBNet     ``conv_w``) ``kaiming_normal_(fan_in, a=0) × 0.1``, biases 0, as the
                       official SPSR and ESRGAN training code; the fixed gradient kernels
                       (buffers) are untouched
SRResNet               the same (BasicSR's ``MSRResNet`` initialises every conv × 0.1)
EDSR                   PyTorch's default (EDSR-PyTorch does not initialise its layers)
discriminators (VGG    convolutions and linear layers ``kaiming_normal_(fan_in, a=0)``
D, D_GM, D_SF, U-Net)  scale 1, biases 0; BatchNorm weight 1, bias 0 (SPSR's ``define_D``)
=====================  ==================================================================

The functions draw from torch's global generator, so a seeded run initialises identically on
every process and in every run; the training stages call them once, when they build a network,
which is before ``--init`` weights or a resumed state are loaded into it (loaded layers keep the
loaded values).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils import parametrize

from spsr.archs.registry import family

INIT_SCHEMES: tuple[str, ...] = ("official", "pytorch")
#: Scale of the generators' Kaiming initialisation in the official code (``init_weights(scale=0.1)``).
GENERATOR_SCALE = 0.1
# Power iterations that re-estimate a spectral norm after its weight was redrawn (what
# ``spectral_norm`` itself does when it is applied).
_SPECTRAL_ITERATIONS = 15


def check_scheme(scheme: str) -> str:
    """``scheme`` if it is one of :data:`INIT_SCHEMES`, else a ``ValueError``."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown weight initialisation {scheme!r}; use one of {', '.join(INIT_SCHEMES)}")
    return scheme


def kaiming_init_(module: nn.Module, scale: float = 1.0) -> nn.Module:
    """Initialise every convolution and linear layer of ``module`` in place.

    Weights ``kaiming_normal_(a=0, mode="fan_in") × scale`` (std ``scale·sqrt(2 / fan_in)``),
    biases 0; affine BatchNorm layers weight 1, bias 0. Spectrally normalised layers get their
    unnormalised weight redrawn and their spectral-norm estimate refreshed. Buffers (e.g. the
    fixed gradient kernels) are left alone.

    Returns:
        ``module``.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (_ConvNd, nn.Linear)):
                _init_weighted(layer, scale)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.affine:
                nn.init.ones_(layer.weight)
                nn.init.zeros_(layer.bias)
    return module


def _init_weighted(layer: nn.Module, scale: float) -> None:
    weight: torch.Tensor
    if parametrize.is_parametrized(layer, "weight"):
        parametrizations = layer.parametrizations
        assert isinstance(parametrizations, nn.ModuleDict)
        original = parametrizations["weight"].original
        assert isinstance(original, torch.Tensor)
        weight = original
    else:
        assert isinstance(layer.weight, torch.Tensor)
        weight = layer.weight
    nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
    weight.mul_(scale)
    bias = getattr(layer, "bias", None)
    if bias is not None:
        nn.init.zeros_(bias)
    if parametrize.is_parametrized(layer, "weight"):
        # A spectral norm keeps power-iteration vectors of the old weight; in training mode each
        # evaluation of ``layer.weight`` runs one more iteration, so a few bring them up to date.
        was_training = layer.training
        layer.train()
        for _ in range(_SPECTRAL_ITERATIONS):
            layer.weight  # noqa: B018 - evaluated for its power-iteration side effect
        layer.train(was_training)


def init_generator(module: nn.Module, arch: str, scheme: str = "official") -> nn.Module:
    """Initialise a freshly built generator of architecture ``arch`` with ``scheme``.

    Args:
        module: the generator (as :func:`spsr.archs.build_model` returns it).
        arch: its ``ArchSpec.arch`` (``spsr``, ``rrdb``, ``edsr``, ``srresnet``).
        scheme: ``official`` (the family's ``default_init``, see the module docstring) or
            ``pytorch`` (leave it as built).

    Returns:
        ``module``.
    """
    if check_scheme(scheme) == "pytorch" or family(arch).default_init == "pytorch":
        return module
    return kaiming_init_(module, GENERATOR_SCALE)


def init_discriminator(module: nn.Module, scheme: str = "official") -> nn.Module:
    """Initialise a freshly built discriminator with ``scheme`` (``official``: Kaiming, scale 1)."""
    if check_scheme(scheme) == "pytorch":
        return module
    return kaiming_init_(module, 1.0)
