"""PSNR on the evaluation Y (or RGB), the protocol's border shaved (:func:`spsr.metrics.psnr_ssim.calculate_psnr`)."""

from __future__ import annotations

from spsr.metrics.conventions import Scoring
from spsr.metrics.metric import Metric, ScoreJob


def compute(job: ScoreJob) -> float:
    from spsr.metrics.psnr_ssim import calculate_psnr

    s = job.scoring
    return calculate_psnr(job.sr, job.hr, s.crop_border, s.y_channel)


def psnr_ssim_note(scoring: Scoring) -> tuple[int, str]:
    """The part of the line under a table that PSNR and SSIM share."""
    channel = "Y" if scoring.y_channel else "RGB"
    return 10, f"PSNR/SSIM on {channel}, border {scoring.crop_border} shaved"


METRIC = Metric(
    name="psnr", label="PSNR", higher_is_better=True, needs_reference=True, decimals=2,
    compute=compute,
    conventions={"psnr": "10 log10(255^2 / MSE) over all pixels (and channels with --rgb)"},
    notes=lambda scoring: (psnr_ssim_note(scoring),),
)
