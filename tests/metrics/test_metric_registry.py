"""The metric registry: each metric is one module declaring name, direction, files, conventions
and compute function, and eval's help, results files, the line under a table, spsr fetch and
training validation read it. A new metric (tests/_tiny_metric.py) is one module plus one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spsr.metrics import registry
from spsr.metrics.conventions import resolve_protocol
from spsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from spsr.metrics.registry import (
    ALL_METRICS,
    CONVENTIONS,
    METRIC_MODULES,
    METRICS,
    EvalSettings,
    MetricSuite,
    conventions_note,
    metric_needs,
    metrics_help,
    parse_metrics,
)

RNG = np.random.default_rng(3)
SR = RNG.integers(0, 256, (40, 36, 3), dtype=np.uint8)
HR = RNG.integers(0, 256, (40, 36, 3), dtype=np.uint8)


def test_every_metric_module_declares_one_metric_in_the_order_all_expands_to() -> None:
    assert ALL_METRICS == ("psnr", "ssim", "lpips", "niqe", "ma", "pi", "gradmap_l1")
    assert [m.rsplit(".", 1)[1] for m in METRIC_MODULES] == list(ALL_METRICS)
    owned = [key for m in METRICS.values() for key in m.conventions]
    assert len(owned) == len(set(owned)) and set(owned) <= set(CONVENTIONS)
    assert list(CONVENTIONS)[:5] == ["y_channel", "grayscale", "float_input", "crop_border", "pi_border"]
    assert list(CONVENTIONS)[-1] == "degradation"
    assert {m.name for m in METRICS.values() if m.files} == {"lpips", "ma", "pi"}
    assert METRICS["pi"].uses == ("ma", "niqe")


def test_help_texts_and_needs_come_from_the_declarations() -> None:
    assert metrics_help() == (
        "psnr, ssim, lpips, niqe, ma, pi, gradmap_l1 (the gradient-map error ‖M(SR) − M(HR)‖₁, "
        "lower is better)"
    )
    assert metrics_help(describe=False) == ", ".join(ALL_METRICS)
    needs = metric_needs(["psnr", "lpips", "pi"], lpips_backbone="/a.pth")
    assert [(n.spec.key, n.explicit, n.option) for n in needs] == [
        ("alexnet", "/a.pth", "--lpips-backbone PATH"), ("ma-model", None, "--ma-model PATH")]


def test_the_suite_computes_each_metric_through_its_declaration() -> None:
    settings = EvalSettings.for_protocol(("psnr", "ssim", "gradmap_l1"), 4)
    scores = MetricSuite(settings).score(SR, HR)
    assert list(scores) == ["psnr", "ssim", "gradmap_l1"]
    assert scores["psnr"] == calculate_psnr(SR, HR, 4, True)
    assert scores["ssim"] == calculate_ssim(SR, HR, 4, True, True)
    note = conventions_note(settings.scoring, ["gradmap_l1", "ssim", "psnr"])
    assert note == ("protocol spsr: PSNR/SSIM on Y, border 4 shaved; SSIM after ssim.m's downsampling; "
                    "gradient-map L1 on RGB in [0, 1], border 4 shaved")
    described = MetricSuite(settings).describe()["conventions"]
    assert isinstance(described, dict)
    assert "ssim_downsample" in described and "niqe" not in described and "lpips" not in described


def test_training_validation_scores_as_the_registry_does() -> None:
    from spsr.train.validate import ValImage, evaluate_generator

    hr = np.ascontiguousarray(HR[:32, :32])
    lr = np.ascontiguousarray(hr[::4, ::4])
    model = torch.nn.Upsample(scale_factor=4, mode="nearest")
    out = evaluate_generator(model, [ValImage("a", hr, lr)], 4, "cpu", 0, "fp32", "basicsr")
    sr = np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)
    assert out["psnr"] == pytest.approx(float(calculate_psnr(sr, hr, 4, True)), abs=1e-9)
    assert out["ssim"] == pytest.approx(float(calculate_ssim(sr, hr, 4, True, False)), abs=1e-9)
    assert out["protocol"] == resolve_protocol("basicsr", 4).label == "basicsr"


def test_a_new_metric_is_one_module_and_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = (*METRIC_MODULES, "_tiny_metric")  # the one line
    metrics = registry._load(modules)
    monkeypatch.setattr(registry, "METRIC_MODULES", modules)
    monkeypatch.setattr(registry, "METRICS", metrics)
    monkeypatch.setattr(registry, "ALL_METRICS", tuple(metrics))
    monkeypatch.setattr(registry, "CONVENTIONS", registry._conventions(metrics))

    assert parse_metrics("mae,psnr") == ("psnr", "mae")
    assert registry.metrics_help().endswith("mae (mean absolute error)")
    settings = EvalSettings.for_protocol(parse_metrics("psnr,mae"), 2)
    suite = MetricSuite(settings)
    scores = suite.score(SR, HR)
    expected = np.abs(SR[2:-2, 2:-2].astype(float) - HR[2:-2, 2:-2].astype(float)).mean()
    assert scores["mae"] == pytest.approx(expected)
    described = suite.describe()
    assert described["better"] == {"psnr": "higher", "mae": "lower"}
    assert "mae" in described["conventions"]  # type: ignore[operator]
    assert registry.conventions_note(settings.scoring, ["psnr", "mae"]).endswith("MAE on RGB, border 2 shaved")
    assert registry.metric_needs(["mae"]) == []
