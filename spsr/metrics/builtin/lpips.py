"""LPIPS (Zhang et al. 2018) with the lpips package's AlexNet, on the full RGB image
(:class:`spsr.metrics.lpips_metric.LPIPSMetric`)."""

from __future__ import annotations

from typing import Any

from spsr.metrics.metric import FileUse, Metric, ScoreJob


def load(settings: Any, random_backbone: bool) -> object:
    from spsr.metrics.lpips_metric import LPIPSMetric

    return LPIPSMetric(settings.lpips_backbone, settings.device, random_backbone=random_backbone)


def compute(job: ScoreJob) -> float:
    return job.resource("lpips")(job.sr, job.hr)


METRIC = Metric(
    name="lpips", label="LPIPS", higher_is_better=False, needs_reference=True, decimals=4,
    compute=compute,
    conventions={"lpips": "lpips package v0.1, AlexNet, the full RGB image (no shave) mapped to [-1, 1]"},
    notes=lambda scoring: ((40, "LPIPS on RGB"),),
    # The lpips package's linear layers ship inside its wheel; the AlexNet trunk is torchvision's.
    files=(FileUse("alexnet", "lpips_backbone", "--lpips-backbone PATH"),),
    load=load,
)
