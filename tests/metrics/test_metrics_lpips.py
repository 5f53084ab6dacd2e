"""LPIPS metric code path. No ImageNet AlexNet here: the tests that compute distances use a randomly
initialised backbone (said so in their names); the numbers are then not LPIPS, the plumbing is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data as skdata

from spsr.errors import MissingWeightsError
from spsr.metrics import EvalSettings, MetricInputError, MetricSuite
from spsr.metrics.lpips_metric import LPIPSMetric


@pytest.fixture(scope="module")
def random_backbone_metric() -> LPIPSMetric:
    torch.manual_seed(0)
    return LPIPSMetric(random_backbone=True)


def _pair() -> tuple[np.ndarray, np.ndarray]:
    hr = np.ascontiguousarray(skdata.astronaut()[:64, :64])
    rng = np.random.default_rng(0)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    return sr, hr


def test_random_backbone_distance_is_zero_for_identical_and_positive_otherwise(random_backbone_metric):
    sr, hr = _pair()
    assert random_backbone_metric(hr, hr) == pytest.approx(0.0, abs=1e-7)
    assert random_backbone_metric(sr, hr) > 1e-4


def test_random_backbone_inputs_reach_the_network_in_minus_one_to_one(random_backbone_metric):
    sr, hr = _pair()
    a, b = (torch.from_numpy(x.transpose(2, 0, 1).copy())[None].float() / 255 for x in (sr, hr))
    direct = random_backbone_metric.net(a * 2 - 1, b * 2 - 1).item()
    assert random_backbone_metric(sr, hr) == pytest.approx(direct, rel=1e-6)
    wrong_range = random_backbone_metric.net(a, b).item()  # the classic [0, 1] mistake differs
    assert abs(wrong_range - direct) > 1e-6


def test_random_backbone_batch_equals_single_and_gray_is_rgb(random_backbone_metric):
    sr, hr = _pair()
    gray_sr, gray_hr = sr[:, :, 1], hr[:, :, 1]
    batch_sr = torch.stack([torch.from_numpy(x.transpose(2, 0, 1).copy()) for x in (sr, hr)]) / 255.0
    batch_hr = torch.stack([torch.from_numpy(hr.transpose(2, 0, 1).copy())] * 2) / 255.0
    dist = random_backbone_metric.batch(batch_sr, batch_hr)
    assert dist.shape == (2,)
    assert dist[0].item() == pytest.approx(random_backbone_metric(sr, hr), rel=1e-6)
    rgb = [np.repeat(g[:, :, None], 3, axis=2) for g in (gray_sr, gray_hr)]
    assert random_backbone_metric(gray_sr, gray_hr) == pytest.approx(
        random_backbone_metric(*rgb), rel=1e-6
    )
    with pytest.raises(MetricInputError, match="SR is"):
        random_backbone_metric(sr, hr[:32])


def test_random_backbone_suite_scores_lpips_with_the_other_metrics():
    suite = MetricSuite(EvalSettings.for_protocol(("psnr", "lpips"), 4),
                        lpips_random_backbone=True)
    sr, hr = _pair()
    scores = suite.score(sr, hr)
    assert list(scores) == ["psnr", "lpips"] and scores["lpips"] > 0


def test_missing_alexnet_weights_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"alexnet-owt-7be5be79\.pth"):
        LPIPSMetric()
    with pytest.raises(MissingWeightsError, match=r"metric lpips: .*or pass --lpips-backbone PATH"):
        MetricSuite(EvalSettings.for_protocol(("lpips",), 4))
    with pytest.raises(MissingWeightsError, match=str(tmp_path / "mine.pth")):
        LPIPSMetric(backbone=tmp_path / "mine.pth")
