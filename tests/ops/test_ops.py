"""Operators: values worked out by hand on small arrays, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spsr.ops import (
    GradientMap,
    bicubic_degrade,
    gradient_map,
    imresize,
    imresize_np,
    mod_crop,
    resize_matrix,
    rgb_to_y,
    rgb_to_y_np,
    round_half_away,
)

EPS_GRAD = math.sqrt(1e-6)


def test_gradient_map_of_a_single_bright_pixel_by_hand() -> None:
    img = torch.zeros(1, 1, 3, 3)
    img[0, 0, 1, 1] = 1.0
    g = gradient_map(img)[0, 0]
    edge = math.sqrt(1.0 + 1e-6)
    expected = torch.tensor([[EPS_GRAD, edge, EPS_GRAD], [edge, EPS_GRAD, edge], [EPS_GRAD, edge, EPS_GRAD]])
    assert torch.allclose(g, expected, atol=1e-7)


def test_gradient_map_ramp_and_zero_padding() -> None:
    # I(x) = x along the row: interior |Ix| = 2, borders see the zero padding.
    img = torch.arange(5.0).view(1, 1, 1, 5)
    g = gradient_map(img)[0, 0, 0]
    assert torch.allclose(g, torch.tensor([1.0, 2.0, 2.0, 2.0, 3.0]), atol=1e-5)


def test_gradient_padding_two_is_official_loss_form() -> None:
    x = torch.rand(2, 3, 6, 7)
    g2 = gradient_map(x, padding=2)
    assert g2.shape == (2, 3, 8, 9)
    assert torch.allclose(g2[..., 1:-1, 1:-1], gradient_map(x, padding=1), atol=1e-6)
    assert torch.allclose(GradientMap(2)(x), g2, atol=1e-6)


def test_gradient_module_is_fixed_and_matches_function() -> None:
    m = GradientMap()
    assert list(m.parameters()) == []
    assert set(m.state_dict()) == {"weight_h", "weight_v"}
    x = torch.rand(1, 3, 9, 9)
    assert torch.allclose(m(x), gradient_map(x), atol=1e-6)


def test_constant_image_has_flat_interior_gradient() -> None:
    x = torch.full((1, 3, 8, 8), 0.7)
    assert torch.allclose(gradient_map(x)[..., 1:-1, 1:-1], torch.full((1, 3, 6, 6), EPS_GRAD), atol=1e-7)


def test_imresize_upscale_weights_by_hand() -> None:
    # Keys cubic (a=-0.5) at ×2 on [0, 1] with symmetric padding, computed on paper:
    # out = [-0.09375, 0.203125, 0.796875, 1.09375].
    row = np.array([[0.0, 1.0]])
    out = imresize_np(row, size=(1, 4))
    assert np.allclose(out[0], [-0.09375, 0.203125, 0.796875, 1.09375], atol=1e-12)


def test_resize_matrix_rows_sum_to_one() -> None:
    for n_in, scale in [(10, 0.25), (7, 1 / 3), (5, 2.0), (9, 4.0)]:
        m = resize_matrix(n_in, math.ceil(n_in * scale), scale, True)
        assert np.allclose(m.sum(1), 1.0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_constant_image_stays_constant(scale: int) -> None:
    img = np.full((24, 36, 3), 0.42)
    down = imresize_np(img, 1 / scale)
    up = imresize_np(img, scale)
    assert down.shape == (24 // scale, 36 // scale, 3)
    assert up.shape == (24 * scale, 36 * scale, 3)
    assert np.allclose(down, 0.42) and np.allclose(up, 0.42)
    u8 = np.full((12, 12, 3), 200, np.uint8)
    assert (imresize_np(u8, 1 / scale) == 200).all()


def test_downscale_antialiases() -> None:
    # Stripes of period 8 become period 2 (Nyquist) at 1/4: the stretched kernel attenuates them
    # (measured contrast ~0.65), plain cubic sampling keeps full contrast.
    stripes = np.tile(np.repeat([1.0, 0.0], 4), (32, 4))
    aa = imresize_np(stripes, 0.25)
    raw = imresize_np(stripes, 0.25, antialias=False)
    assert abs(aa.mean() - 0.5) < 0.02 and aa.std() < 0.36
    assert raw.std() > 0.4


def test_torch_and_numpy_resize_agree(astronaut: np.ndarray) -> None:
    img = astronaut[:61, :47].astype(np.float64) / 255
    ref = imresize_np(img, 0.25)
    t = imresize(torch.from_numpy(img).permute(2, 0, 1).contiguous(), 0.25)
    assert np.allclose(t.permute(1, 2, 0).numpy(), ref, atol=1e-12)
    assert ref.shape == (16, 12, 3)  # MATLAB: ceil(61/4) x ceil(47/4)


def _half_up(x: np.ndarray) -> np.ndarray:
    """MATLAB's rounding for the non-negative values of an image (halves up), written out plainly."""
    return np.floor(x + 0.5)


def test_uint8_resize_rounds_like_matlab(astronaut: np.ndarray) -> None:
    img = astronaut[:64, :64]
    out = imresize_np(img, 0.25)
    assert out.dtype == np.uint8
    # Per-axis rounding: equal to rounding the float result of the first axis, then resizing.
    rows = np.tensordot(resize_matrix(64, 16, 0.25), img.astype(np.float64), axes=([1], [0]))
    first = np.clip(_half_up(rows), 0, 255)
    second = np.tensordot(resize_matrix(64, 16, 0.25), first, axes=([1], [1])).transpose(1, 0, 2)
    assert (out == np.clip(_half_up(second), 0, 255).astype(np.uint8)).all()


def test_uint8_resize_rounds_exact_halves_away_from_zero(astronaut: np.ndarray) -> None:
    # x2 upscaling weights are dyadic, so some outputs are exact halves: MATLAB rounds them up,
    # np.round would round the even ones down.
    plane = astronaut[:, :, 0]  # rows only are resized (the width stays 512)
    exact = resize_matrix(512, 1024, 2.0) @ plane.astype(np.float64)
    halves = (exact - np.floor(exact) == 0.5) & (exact > 0) & (exact < 255)  # not clipped
    even = halves & (np.floor(exact) % 2 == 0)
    assert halves.sum() > 0 and even.sum() > 0
    out = imresize_np(plane, size=(1024, 512)).astype(np.float64)
    assert (out[halves] == np.floor(exact[halves]) + 1).all()
    assert (out[even] != np.round(exact[even])).all()


def test_round_half_away_matches_matlab_round() -> None:
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999999999999994, -0.49999999999999994, 3.2, -3.7])
    assert round_half_away(x).tolist() == [-3, -2, -1, 1, 2, 3, 0, 0, 3, -4]
    assert float(round_half_away(2.5)) == 3.0


def test_bicubic_degrade_mod_crops(astronaut: np.ndarray) -> None:
    hr, lr = bicubic_degrade(astronaut[:103, :98], 4)
    assert hr.shape == (100, 96, 3) and lr.shape == (25, 24, 3)
    assert mod_crop(astronaut[:10, :11], 3).shape == (9, 9, 3)


def test_rgb_to_y_by_hand() -> None:
    white = torch.ones(1, 3, 1, 1)
    black = torch.zeros(1, 3, 1, 1)
    assert torch.allclose(rgb_to_y(white), torch.tensor(235 / 255))
    assert torch.allclose(rgb_to_y(black), torch.tensor(16 / 255))
    red = np.array([[[255, 0, 0]]], np.uint8)
    assert rgb_to_y_np(red)[0, 0] == 81  # 16 + 65.481 rounded
    gray = np.full((2, 2), 128, np.uint8)
    assert (rgb_to_y_np(gray) == round(16 + 219 * 128 / 255)).all()
