"""MoA augmentation keeps LR and HR a consistent pair."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spsr.data.moa import MOA_OPS, MoA, cutblur, cutout, nearest_upsample
from spsr.errors import ConfigError

SCALE = 4
PAIRED_OPS = [op for op in MOA_OPS if op not in ("cutblur", "cutout")]  # change LR and HR alike


def degrade(hr: torch.Tensor) -> torch.Tensor:
    """A linear degradation mapping each s×s block to one pixel (box average)."""
    return F.avg_pool2d(hr, SCALE)


def batch(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 8 * SCALE, 6 * SCALE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("op", PAIRED_OPS)
def test_lr_size_pairs_stay_consistent(op: str) -> None:
    hr = batch()
    moa = MoA(SCALE, ops=[op])
    for seed in range(5):
        out = moa(degrade(hr), hr, generator=torch.Generator().manual_seed(seed))
        assert out.op == op
        torch.testing.assert_close(out.lr, degrade(out.hr), atol=1e-6, rtol=0)
    assert not torch.allclose(out.hr, hr)


@pytest.mark.parametrize("op", PAIRED_OPS)
def test_hr_size_pairs_stay_consistent(op: str) -> None:
    hr = batch()
    moa = MoA(SCALE, ops=[op])
    for seed in range(5):
        lr_up = nearest_upsample(degrade(hr), SCALE)
        out = moa(lr_up, hr, generator=torch.Generator().manual_seed(seed))
        expected = nearest_upsample(degrade(out.hr), SCALE)
        torch.testing.assert_close(out.lr, expected, atol=1e-6, rtol=0)


def grid_box(region: torch.Tensor) -> bool:
    """Whether a 2-D boolean map is one filled rectangle with corners on the LR grid."""
    if not region.any():
        return False
    rows, cols = region.any(1).nonzero().flatten(), region.any(0).nonzero().flatten()
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    filled = int(region.sum()) == (r1 - r0) * (c1 - c0)
    return filled and all(v % SCALE == 0 for v in (r0, r1, c0, c1))


def test_cutblur_puts_hr_pixels_into_a_grid_aligned_box_of_the_input() -> None:
    hr = batch()
    lr_up = nearest_upsample(degrade(hr), SCALE)
    seen_inside = seen_outside = False
    for seed in range(12):
        lr_aug, hr_aug = cutblur(lr_up, hr, SCALE, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(hr_aug, hr)
        from_hr = (lr_aug == hr).all(1)
        from_lr = (lr_aug == lr_up).all(1)
        assert bool((from_hr ^ from_lr).all())  # every pixel comes from exactly one of them
        assert bool((from_hr == from_hr[:1]).all())  # the same region for the whole batch
        region = from_hr[0]
        assert grid_box(region) or grid_box(~region)
        seen_inside |= grid_box(region) and not grid_box(~region)
        seen_outside |= grid_box(~region) and not grid_box(region)
    assert seen_inside and seen_outside


def test_cutblur_needs_hr_size_input() -> None:
    hr = batch()
    with pytest.raises(ConfigError, match="desubpixel"):
        cutblur(degrade(hr), hr, SCALE)
    with pytest.raises(ConfigError, match="desubpixel"):
        MoA(SCALE, ops=["cutblur"])(degrade(hr), hr)


def test_lr_size_input_draws_every_op_but_cutblur() -> None:
    hr = batch(2)
    moa = MoA(SCALE)
    gen = torch.Generator().manual_seed(0)
    drawn = {moa(degrade(hr), hr, generator=gen).op for _ in range(80)}
    assert drawn == set(MOA_OPS) - {"cutblur"}
    drawn_hr = {moa(nearest_upsample(degrade(hr), SCALE), hr, generator=gen).op for _ in range(80)}
    assert drawn_hr == set(MOA_OPS)


def test_probability_zero_leaves_the_batch_alone_and_draws_are_reproducible() -> None:
    hr = batch()
    lr = degrade(hr)
    out = MoA(SCALE, prob=0.0)(lr, hr)
    assert out.op == "none" and out.lr is lr and out.hr is hr
    a = MoA(SCALE)(lr, hr, generator=torch.Generator().manual_seed(7))
    b = MoA(SCALE)(lr, hr, generator=torch.Generator().manual_seed(7))
    assert a.op == b.op and torch.equal(a.lr, b.lr) and torch.equal(a.hr, b.hr)


def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown MoA"):
        MoA(SCALE, ops=["sharpen"])
    with pytest.raises(ConfigError):
        MoA(SCALE, ops=[])
    with pytest.raises(ConfigError):
        MoA(SCALE, prob=1.5)
    with pytest.raises(ConfigError, match="do not match"):
        MoA(SCALE)(torch.rand(1, 3, 5, 5), torch.rand(1, 3, 16, 16))


def test_cutout_is_the_seventh_operation_and_drops_lr_pixels_only() -> None:
    # CutBlur's MoA (which the U-Net follow-up cites) has seven operations; cutout zeroes input
    # pixels with probability alpha and keeps the HR target.
    assert len(MOA_OPS) == 7 and MOA_OPS[-1] == "cutout"
    hr = batch(8)
    lr = degrade(hr) + 0.01  # no pixel is zero before
    lr_out, hr_out = cutout(lr, hr, SCALE, alpha=0.25, generator=torch.Generator().manual_seed(0))
    assert torch.equal(hr_out, hr)
    dropped = (lr_out == 0).all(1)
    assert bool(((lr_out == 0).any(1) == dropped).all())  # all channels of a pixel, or none
    assert bool(torch.where(dropped.unsqueeze(1), True, lr_out == lr).all())  # the rest untouched
    assert 0.15 < float(dropped.float().mean()) < 0.35  # 25 % of 8×8×6 pixels
    # At HR size (the desubpixel input) whole scale×scale blocks go, the same pattern.
    up = nearest_upsample(lr, SCALE)
    up_out, _ = cutout(up, hr, SCALE, alpha=0.25, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(up_out, nearest_upsample(lr_out, SCALE), atol=0, rtol=0)
    default = MoA(SCALE, ops=["cutout"])(lr, hr, generator=torch.Generator().manual_seed(1))
    assert default.op == "cutout" and torch.equal(default.hr, hr)
    assert float((default.lr == 0).all(1).float().mean()) < 0.01  # alpha 0.001 by default
