"""MoA: a mixture of augmentations for paired LR/HR batches (Yoo et al., CutBlur; used by the U-Net follow-up).

For each batch one operation is drawn uniformly from the enabled ones (with probability ``prob``;
otherwise the batch is left alone). The seven operations of CutBlur's MoA, which the U-Net
follow-up cites (§3.1); the first five change LR and HR alike, so the pair stays a valid
(degraded, ground-truth) pair, the last two change the LR input only and keep the HR target:

- ``blend``: both images blended towards one random colour, ``v·x + (1−v)·c``, ``v ~ U(α, 1)``;
- ``rgb``: the same random permutation of the colour channels;
- ``mixup``: ``v·x + (1−v)·x[perm]`` with another image of the batch, ``v ~ Beta(α, α)``;
- ``cutmix``: a box pasted from another image of the batch;
- ``cutmixup``: the mixup image inside a box, the original outside (or the reverse);
- ``cutblur``: the HR pixels inside a box pasted into the LR input (or outside it), teaching the
  network where and how much to super-resolve. It needs the LR input at HR size (the LR
  nearest-upsampled; a generator with the desubpixel head takes it);
- ``cutout``: each LR pixel (all its channels; at HR size, its ``s×s`` block) zeroed with
  probability α = 0.001, the HR target unchanged (CutBlur's cutout, a pixel dropout of the input).

Boxes lie on the scale grid (HR box = scale × LR box), so every operation except ``cutblur``
also works on LR tensors of LR size, and commutes with any degradation that maps each ``s×s`` HR
block to one LR pixel linearly. Batches are float tensors ``(N, C, H, W)`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from spsr.errors import ConfigError

MOA_OPS = ("blend", "rgb", "mixup", "cutmix", "cutmixup", "cutblur", "cutout")
NEEDS_HR_SIZE_LR = frozenset({"cutblur"})


@dataclass(frozen=True)
class Box:
    """A box on the LR grid: top, left, height, width (in LR pixels)."""

    top: int
    left: int
    height: int
    width: int

    def slices(self, factor: int = 1) -> tuple[slice, slice]:
        """Row and column slices of the box on a grid ``factor`` times finer."""
        return (
            slice(self.top * factor, (self.top + self.height) * factor),
            slice(self.left * factor, (self.left + self.width) * factor),
        )


@dataclass(frozen=True)
class MoAResult:
    """An augmented pair and the operation applied (``none`` when the batch was left alone)."""

    lr: torch.Tensor
    hr: torch.Tensor
    op: str


def nearest_upsample(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """LR ``(N, C, H, W)`` to HR size by nearest neighbour (the input of a desubpixel head)."""
    return F.interpolate(lr, scale_factor=scale, mode="nearest")


def _uniform(generator: torch.Generator | None, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _coin(generator: torch.Generator | None) -> bool:
    return _uniform(generator) < 0.5


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    # torch's Beta sampler takes no generator: seed numpy's from it so draws stay reproducible.
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def random_box(
    lr_height: int, lr_width: int, ratio: float, generator: torch.Generator | None = None
) -> Box:
    """A box whose sides are about ``ratio`` of the LR grid's, fully inside it.

    Args:
        lr_height: LR grid height.
        lr_width: LR grid width.
        ratio: mean side fraction; the draw is ``N(ratio, 0.01)`` clipped to [0.1, 1].
        generator: random generator.

    Returns:
        The box, at least one LR pixel each way.
    """
    frac = ratio + 0.01 * float(torch.randn((), generator=generator))
    frac = min(max(frac, 0.1), 1.0)
    bh = max(1, int(round(lr_height * frac)))
    bw = max(1, int(round(lr_width * frac)))
    top = int(torch.randint(0, lr_height - bh + 1, (), generator=generator))
    left = int(torch.randint(0, lr_width - bw + 1, (), generator=generator))
    return Box(top, left, bh, bw)


def blend(
    lr: torch.Tensor, hr: torch.Tensor, alpha: float = 0.6, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend LR and HR towards one random colour: ``v·x + (1 − v)·c``, ``v ~ U(alpha, 1)``."""
    colour = torch.rand(1, lr.shape[1], 1, 1, generator=generator).to(lr)
    v = _uniform(generator, alpha, 1.0)
    return v * lr + (1 - v) * colour, v * hr + (1 - v) * colour


def rgb_permute(
    lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the same random permutation of colour channels to LR and HR."""
    order = torch.randperm(lr.shape[1], generator=generator).to(lr.device)
    return lr[:, order], hr[:, order]


def mixup(
    lr: torch.Tensor,
    hr: torch.Tensor,
    alpha: float = 1.2,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each pair with another of the batch: ``v·x + (1 − v)·x[perm]``, ``v ~ Beta(α, α)``."""
    perm = torch.randperm(lr.shape[0], generator=generator).to(lr.device)
    v = _beta(alpha, generator)
    return v * lr + (1 - v) * lr[perm], v * hr + (1 - v) * hr[perm]


def _lr_factor(lr: torch.Tensor, hr: torch.Tensor, scale: int) -> int:
    """How much finer than the LR grid the LR tensor is: ``scale`` at HR size, 1 at LR size."""
    if lr.shape[-2:] == hr.shape[-2:]:
        return scale
    if (lr.shape[-2] * scale, lr.shape[-1] * scale) != tuple(hr.shape[-2:]):
        raise ConfigError(
            f"LR {tuple(lr.shape[-2:])} and HR {tuple(hr.shape[-2:])} do not match scale {scale}"
        )
    return 1


def _grid(hr: torch.Tensor, scale: int) -> tuple[int, int]:
    return hr.shape[-2] // scale, hr.shape[-1] // scale


def cutmix(
    lr: torch.Tensor,
    hr: torch.Tensor,
    scale: int,
    ratio: float = 0.7,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste the same box from another pair of the batch into LR and HR."""
    perm = torch.randperm(lr.shape[0], generator=generator).to(lr.device)
    box = random_box(*_grid(hr, scale), ratio, generator)
    lr_rows, lr_cols = box.slices(_lr_factor(lr, hr, scale))
    hr_rows, hr_cols = box.slices(scale)
    lr, hr = lr.clone(), hr.clone()
    lr[..., lr_rows, lr_cols] = lr[perm][..., lr_rows, lr_cols]
    hr[..., hr_rows, hr_cols] = hr[perm][..., hr_rows, hr_cols]
    return lr, hr


def cutmixup(
    lr: torch.Tensor,
    hr: torch.Tensor,
    scale: int,
    mixup_alpha: float = 1.2,
    ratio: float = 0.7,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mixup pair inside a box and the original outside, or the reverse (coin toss)."""
    lr_mix, hr_mix = mixup(lr, hr, mixup_alpha, generator)
    box = random_box(*_grid(hr, scale), ratio, generator)
    if _coin(generator):
        lr_mix, lr = lr, lr_mix
        hr_mix, hr = hr, hr_mix
    lr_rows, lr_cols = box.slices(_lr_factor(lr, hr, scale))
    hr_rows, hr_cols = box.slices(scale)
    lr, hr = lr.clone(), hr.clone()
    lr[..., lr_rows, lr_cols] = lr_mix[..., lr_rows, lr_cols]
    hr[..., hr_rows, hr_cols] = hr_mix[..., hr_rows, hr_cols]
    return lr, hr


def cutblur(
    lr_up: torch.Tensor,
    hr: torch.Tensor,
    scale: int,
    ratio: float = 0.7,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Put HR pixels into the HR-size LR input inside a box, or outside it (coin toss).

    Args:
        lr_up: LR nearest-upsampled to HR size.
        hr: the HR batch (returned unchanged).
        scale: SR factor (the box lies on the LR grid).
        ratio: mean side fraction of the box.
        generator: random generator.

    Returns:
        ``(lr_up with HR content, hr)``.
    """
    if lr_up.shape != hr.shape:
        raise ConfigError(
            "cutblur needs the LR input at HR size (a generator with the desubpixel head)"
        )
    box = random_box(*_grid(hr, scale), ratio, generator)
    rows, cols = box.slices(scale)
    if _coin(generator):
        out = lr_up.clone()
        out[..., rows, cols] = hr[..., rows, cols]
    else:
        out = hr.clone()
        out[..., rows, cols] = lr_up[..., rows, cols]
    return out, hr


def cutout(
    lr: torch.Tensor,
    hr: torch.Tensor,
    scale: int,
    alpha: float = 0.001,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero each LR pixel of the input with probability ``alpha``; the HR target is unchanged.

    The pixels are drawn on the LR grid (one draw per image and LR pixel, for all channels), so
    an LR input nearest-upsampled to HR size loses whole ``scale×scale`` blocks, as the LR image
    it came from would lose single pixels.

    Args:
        lr: LR batch, at LR size or nearest-upsampled to HR size.
        hr: the HR batch (returned unchanged).
        scale: SR factor.
        alpha: probability that a pixel is zeroed.
        generator: random generator.

    Returns:
        ``(lr with dropped pixels, hr)``.
    """
    factor = _lr_factor(lr, hr, scale)
    rows, cols = _grid(hr, scale)
    keep = torch.rand((lr.shape[0], 1, rows, cols), generator=generator) >= alpha
    if factor > 1:
        keep = keep.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    return lr * keep.to(device=lr.device, dtype=lr.dtype), hr


class MoA:
    """Mixture of augmentations applied to whole training batches.

    Args:
        scale: SR factor.
        ops: the operations to draw from (subset of :data:`MOA_OPS`).
        prob: probability that a batch is augmented at all.
        blend_alpha: lower bound of the blend weight.
        mixup_alpha: Beta parameter of mixup and cutmixup.
        cut_ratio: mean side fraction of the boxes.
        cutout_alpha: probability that cutout zeroes an LR pixel.

    Raises:
        ConfigError: an unknown operation, an empty list, or a probability outside [0, 1].
    """

    def __init__(
        self,
        scale: int,
        ops: Sequence[str] = MOA_OPS,
        prob: float = 1.0,
        blend_alpha: float = 0.6,
        mixup_alpha: float = 1.2,
        cut_ratio: float = 0.7,
        cutout_alpha: float = 0.001,
    ) -> None:
        unknown = [op for op in ops if op not in MOA_OPS]
        if unknown:
            raise ConfigError(
                f"unknown MoA operation(s) {', '.join(unknown)}; use {', '.join(MOA_OPS)}"
            )
        if not ops:
            raise ConfigError("MoA needs at least one operation")
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f"MoA probability {prob} is not in [0, 1]")
        self.scale = scale
        self.ops = tuple(dict.fromkeys(ops))
        self.prob = prob
        self.blend_alpha = blend_alpha
        self.mixup_alpha = mixup_alpha
        self.cut_ratio = cut_ratio
        self.cutout_alpha = cutout_alpha

    def available_ops(self, lr_at_hr_size: bool) -> tuple[str, ...]:
        """The enabled operations that apply to LR tensors of HR size or of LR size."""
        if lr_at_hr_size:
            return self.ops
        return tuple(o for o in self.ops if o not in NEEDS_HR_SIZE_LR)

    def apply(
        self, op: str, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply one named operation to a batch pair."""
        if op == "blend":
            return blend(lr, hr, self.blend_alpha, generator)
        if op == "rgb":
            return rgb_permute(lr, hr, generator)
        if op == "mixup":
            return mixup(lr, hr, self.mixup_alpha, generator)
        if op == "cutmix":
            return cutmix(lr, hr, self.scale, self.cut_ratio, generator)
        if op == "cutmixup":
            return cutmixup(lr, hr, self.scale, self.mixup_alpha, self.cut_ratio, generator)
        if op == "cutblur":
            return cutblur(lr, hr, self.scale, self.cut_ratio, generator)
        if op == "cutout":
            return cutout(lr, hr, self.scale, self.cutout_alpha, generator)
        raise ConfigError(f"unknown MoA operation {op!r}")

    def __call__(
        self, lr: torch.Tensor, hr: torch.Tensor, generator: torch.Generator | None = None
    ) -> MoAResult:
        """Augment a batch pair with one randomly drawn operation.

        Args:
            lr: LR batch, at LR size or nearest-upsampled to HR size.
            hr: HR batch.
            generator: random generator (CPU).

        Returns:
            The augmented pair and the operation's name.

        Raises:
            ConfigError: only ``cutblur`` is enabled and the LR batch is at LR size, or sizes
                do not match the scale.
        """
        lr_at_hr_size = _lr_factor(lr, hr, self.scale) == self.scale
        ops = self.available_ops(lr_at_hr_size)
        if not ops:
            raise ConfigError(
                "MoA with only cutblur needs the LR input at HR size "
                "(a generator with the desubpixel head)"
            )
        if _uniform(generator) >= self.prob:
            return MoAResult(lr, hr, "none")
        op = ops[int(torch.randint(0, len(ops), (), generator=generator))]
        lr_out, hr_out = self.apply(op, lr, hr, generator)
        return MoAResult(lr_out, hr_out, op)
