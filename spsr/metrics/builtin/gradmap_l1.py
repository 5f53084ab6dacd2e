"""The gradient-map error ``‖M(SR) − M(HR)‖₁`` on RGB in [0, 1] (:func:`spsr.metrics.gradmap.calculate_gradmap_l1`)."""

from __future__ import annotations

from spsr.metrics.metric import Metric, ScoreJob


def compute(job: ScoreJob) -> float:
    from spsr.metrics.gradmap import calculate_gradmap_l1

    return calculate_gradmap_l1(job.sr, job.hr, job.scoring.crop_border)


METRIC = Metric(
    name="gradmap_l1", label="GradMap L1", higher_is_better=False, needs_reference=True, decimals=4,
    compute=compute,
    conventions={
        "gradmap_l1": "mean |M(SR) - M(HR)| over pixels and RGB channels, images in [0, 1], M = "
        "sqrt(Ix^2 + Iy^2 + 1e-6) with central differences and zero padding 1 (the papers' gradient "
        "operator), crop_border shaved from both maps; always on RGB",
    },
    notes=lambda scoring: ((50, f"gradient-map L1 on RGB in [0, 1], border {scoring.crop_border} shaved"),),
    help="the gradient-map error ‖M(SR) − M(HR)‖₁, lower is better",
)
