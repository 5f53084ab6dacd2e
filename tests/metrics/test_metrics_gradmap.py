"""The gradient-map error ‖M(SR) − M(HR)‖₁: known values, its conventions, and `spsr eval` printing it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from skimage import data as skdata
from typer.testing import CliRunner

from spsr.data.image_io import read_rgb, write_image
from spsr.metrics import (
    METRICS,
    EvalSettings,
    MetricInputError,
    MetricSuite,
    calculate_gradmap_l1,
    gradient_map_np,
    parse_metrics,
)
from spsr.ops import bicubic_degrade, imresize_np
from spsr.ops.gradient import GradientMap
from spsr_cli.cmd_eval import evaluate

EPS = 1e-6


def _dot(size: int = 6, at: int = 2) -> np.ndarray:
    img = np.zeros((size, size, 3), np.uint8)
    img[at, at] = 255
    return img


def test_a_single_bright_pixel_has_a_known_error():
    # M(black) = sqrt(eps) everywhere; a white pixel at (2, 2) makes its four 4-neighbours
    # sqrt(1 + eps) (one unit difference each) and leaves every other pixel (itself included) at
    # sqrt(eps). Four differing pixels per channel, out of 36 (no border) or 16 (border 1).
    black, dot = np.zeros((6, 6, 3), np.uint8), _dot()
    step = math.sqrt(1 + EPS) - math.sqrt(EPS)
    assert calculate_gradmap_l1(dot, black, 0) == pytest.approx(4 * step / 36, abs=1e-12)
    assert calculate_gradmap_l1(dot, black, 1) == pytest.approx(4 * step / 16, abs=1e-12)
    # The metric is symmetric, and a float image in [0, 1] scores like its 8-bit file.
    assert calculate_gradmap_l1(black, dot, 1) == calculate_gradmap_l1(dot, black, 1)
    assert calculate_gradmap_l1(dot / 255.0, black, 1) == calculate_gradmap_l1(dot, black, 1)


def test_identical_images_score_zero_and_a_shifted_edge_does_not():
    img = np.ascontiguousarray(skdata.astronaut()[:40, :48])
    assert calculate_gradmap_l1(img, img.copy(), 4) == 0.0
    edge = np.zeros((16, 16), np.uint8)
    edge[:, 8:] = 200
    shifted = np.zeros_like(edge)
    shifted[:, 9:] = 200
    # The edge's gradient sits on columns 7 and 8; shifted, on 8 and 9. With 2 pixels shaved (the
    # zero padding's border edges go with them), columns 7 and 9 differ by sqrt(g² + eps) -
    # sqrt(eps) on every row: 2 of the 12 remaining columns.
    g = 200 / 255
    expected = 2 * (math.sqrt(g * g + EPS) - math.sqrt(EPS)) / 12
    assert calculate_gradmap_l1(shifted, edge, 2) == pytest.approx(expected, rel=1e-9)
    assert expected > 0.1


def test_the_map_is_the_papers_operator_with_padding_one_per_colour_channel():
    img = np.ascontiguousarray(skdata.astronaut()[50:70, 60:90])
    expected = GradientMap(padding=1)(torch.from_numpy(img / 255.0).permute(2, 0, 1)[None].float())
    ours = gradient_map_np(img)
    assert ours.shape == (20, 30, 3)
    np.testing.assert_allclose(ours, expected[0].permute(1, 2, 0).numpy(), atol=1e-6)
    # Gray counts as R = G = B: the same error as its RGB copy.
    gray, other = img[:, :, 0], img[:, :, 1]
    def rgb(a: np.ndarray) -> np.ndarray:
        return np.repeat(a[:, :, None], 3, axis=2)

    assert calculate_gradmap_l1(gray, other, 2) == calculate_gradmap_l1(rgb(gray), rgb(other), 2)


def test_bad_pairs_are_metric_input_errors():
    with pytest.raises(MetricInputError, match="SR is 6x6 but HR is 6x7"):
        calculate_gradmap_l1(_dot(), np.zeros((6, 7, 3), np.uint8), 0)
    with pytest.raises(MetricInputError, match="too small"):
        calculate_gradmap_l1(_dot(), _dot(), 3)


def test_registered_lower_is_better_and_scored_by_the_suite_with_the_psnr_border():
    assert "gradmap_l1" in parse_metrics("all")
    assert METRICS["gradmap_l1"].higher_is_better is False and METRICS["gradmap_l1"].needs_reference
    suite = MetricSuite(EvalSettings.for_protocol(parse_metrics("psnr,gradmap_l1"), 1))
    scores = suite.score(_dot(), np.zeros((6, 6, 3), np.uint8))
    assert list(scores) == ["psnr", "gradmap_l1"]
    assert scores["gradmap_l1"] == calculate_gradmap_l1(_dot(), np.zeros((6, 6, 3), np.uint8), 1)
    described = suite.describe()
    assert described["better"]["gradmap_l1"] == "lower"
    assert "M(HR)" in described["conventions"]["gradmap_l1"]


def test_spsr_eval_prints_and_writes_the_gradient_map_error(tmp_path: Path):
    hr_dir, sr_dir = tmp_path / "Tiny" / "HR", tmp_path / "sr"
    hr_dir.mkdir(parents=True)
    sr_dir.mkdir()
    hr = np.ascontiguousarray(skdata.astronaut()[100:148, 100:152])
    write_image(hr_dir / "a.png", hr)
    _, lr = bicubic_degrade(hr, 4)
    write_image(sr_dir / "a.png", imresize_np(lr, 4))
    app = typer.Typer(pretty_exceptions_enable=False)
    app.command()(evaluate)
    out = tmp_path / "r.json"
    result = CliRunner().invoke(app, [str(sr_dir), "--hr", str(hr_dir), "--metrics",
                                      "psnr,ssim,gradmap_l1", "--json", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "GradMap L1 ↓" in " ".join(result.output.split())
    payload = json.loads(out.read_text())
    value = payload["datasets"]["Tiny"]["models"]["sr"]["images"]["a"]["gradmap_l1"]
    ref = calculate_gradmap_l1(read_rgb(sr_dir / "a.png"), read_rgb(hr_dir / "a.png"), 4)
    assert value == pytest.approx(ref, abs=1e-12) and value > 0
    assert payload["better"]["gradmap_l1"] == "lower"
