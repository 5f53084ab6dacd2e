"""SSIM (Wang et al. 2004), after ``ssim.m``'s automatic downsampling under the ``spsr``
protocol (:func:`spsr.metrics.psnr_ssim.calculate_ssim`)."""

from __future__ import annotations

from spsr.metrics.builtin.psnr import psnr_ssim_note
from spsr.metrics.conventions import Scoring
from spsr.metrics.metric import Metric, ScoreJob


def compute(job: ScoreJob) -> float:
    from spsr.metrics.psnr_ssim import calculate_ssim

    s = job.scoring
    return calculate_ssim(job.sr, job.hr, s.crop_border, s.y_channel, s.ssim_downsample)


def notes(scoring: Scoring) -> tuple[tuple[int, str], ...]:
    downsample = ("SSIM after ssim.m's downsampling" if scoring.ssim_downsample
                  else "SSIM at full resolution")
    return psnr_ssim_note(scoring), (20, downsample)


METRIC = Metric(
    name="ssim", label="SSIM", higher_is_better=True, needs_reference=True, decimals=4,
    compute=compute,
    conventions={
        "ssim": "Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, L 255, valid "
        "region, mean of the map (per channel, averaged, with --rgb)",
        "ssim_downsample": "when on, first ssim.m's automatic downsampling of the shaved images: "
        "f = max(1, round(min(H, W) / 256)); if f > 1, an f x f mean filter (imfilter, 'symmetric', "
        "'same') and every f-th pixel from the first",
    },
    notes=notes,
)
