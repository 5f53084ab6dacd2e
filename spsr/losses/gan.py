"""Adversarial losses, written on discriminator logits.

Every loss is an :class:`AdversarialLoss` with two methods taking the logits of real and fake
inputs: ``generator(real, fake)`` and ``discriminator(real, fake)``. Relativistic losses need the
real logits in the generator's loss too (pass them detached); the others ignore them.

* ``ragan``: relativistic average GAN with BCE-with-logits (ESRGAN, SPSR):
  ``D: [BCE(r - mean(f), 1) + BCE(f - mean(r), 0)] / 2``,
  ``G: [BCE(r - mean(f), 0) + BCE(f - mean(r), 1)] / 2``.
* ``vanilla``: standard non-saturating GAN with BCE-with-logits.
* ``hinge``: ``D: mean(relu(1 - r)) + mean(relu(1 + f))``, ``G: -mean(f)``.

Add a kind by subclassing :class:`AdversarialLoss` and registering it in ``ADVERSARIAL_LOSSES``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spsr.errors import ConfigError


def _bce(logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    logits = logits.float()
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class AdversarialLoss:
    """Base class: a pair of losses on discriminator logits."""

    name = "base"

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Generator loss.

        Args:
            real: logits of real inputs (detached; ignored by non-relativistic losses).
            fake: logits of generated inputs (carrying the generator's graph).

        Returns:
            A scalar tensor.
        """
        raise NotImplementedError

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Discriminator loss on logits of real inputs and of detached generated inputs."""
        raise NotImplementedError


class RelativisticAverageLoss(AdversarialLoss):
    """RaGAN with BCE-with-logits, as ESRGAN and SPSR train."""

    name = "ragan"

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real, fake = real.float(), fake.float()
        return (_bce(real - fake.mean(), False) + _bce(fake - real.mean(), True)) / 2

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real, fake = real.float(), fake.float()
        return (_bce(real - fake.mean(), True) + _bce(fake - real.mean(), False)) / 2


class VanillaLoss(AdversarialLoss):
    """Non-saturating GAN with BCE-with-logits."""

    name = "vanilla"

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return _bce(fake, True)

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return (_bce(real, True) + _bce(fake, False)) / 2


class HingeLoss(AdversarialLoss):
    """Hinge GAN loss (SAGAN / U-Net discriminator style)."""

    name = "hinge"

    def generator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return -fake.float().mean()

    def discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - real.float()).mean() + F.relu(1.0 + fake.float()).mean()


ADVERSARIAL_LOSSES: dict[str, type[AdversarialLoss]] = {
    RelativisticAverageLoss.name: RelativisticAverageLoss,
    VanillaLoss.name: VanillaLoss,
    HingeLoss.name: HingeLoss,
}


def make_adversarial_loss(kind: str) -> AdversarialLoss:
    """The adversarial loss named ``kind`` (``ragan``, ``vanilla``, ``hinge``, or a registered one)."""
    try:
        return ADVERSARIAL_LOSSES[kind]()
    except KeyError:
        raise ConfigError(
            f"unknown GAN loss {kind!r}; choose one of {', '.join(sorted(ADVERSARIAL_LOSSES))}"
        ) from None
