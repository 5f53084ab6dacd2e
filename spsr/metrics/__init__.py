"""Evaluation metrics in the papers' conventions: PSNR, SSIM, LPIPS, NIQE, Ma (NRQM), PI
and the gradient-map error (gradmap_l1).

Every metric takes 8-bit ``(H, W[, 3])`` arrays (float arrays in [0, 1] are quantised to 8 bits
first); :mod:`spsr.metrics.conventions` is the one place that decides how an image becomes numbers,
under a named protocol (``spsr``: the CVPR 2020 / TPAMI 2021 tables; ``basicsr``).
Heavy dependencies (the LPIPS network, Ma's forests) load only when asked for.
"""

from spsr.metrics.conventions import (
    CONVENTIONS,
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    MetricInputError,
    Protocol,
    Scoring,
    resolve_protocol,
    y_levels,
)
from spsr.metrics.gradmap import calculate_gradmap_l1, gradient_map_np
from spsr.metrics.niqe import calculate_niqe, niqe_of_y
from spsr.metrics.nrqm import (
    MaModel,
    calculate_ma,
    default_ma_model_path,
    find_ma_model,
    load_ma_model,
    ma_of_y,
    spsr_cache_dir,
)
from spsr.metrics.pi import calculate_pi, perceptual_scores, pi_from_scores
from spsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim, psnr_batch, ssim_batch
from spsr.metrics.registry import (
    ALL_METRICS,
    METRICS,
    EvalSettings,
    MetricInfo,
    MetricSuite,
    parse_metrics,
)

__all__ = [
    "ALL_METRICS",
    "CONVENTIONS",
    "DEFAULT_PROTOCOL",
    "METRICS",
    "PROTOCOLS",
    "EvalSettings",
    "MaModel",
    "MetricInfo",
    "MetricInputError",
    "MetricSuite",
    "Protocol",
    "Scoring",
    "calculate_gradmap_l1",
    "calculate_ma",
    "calculate_niqe",
    "calculate_pi",
    "calculate_psnr",
    "calculate_ssim",
    "default_ma_model_path",
    "find_ma_model",
    "gradient_map_np",
    "load_ma_model",
    "ma_of_y",
    "niqe_of_y",
    "parse_metrics",
    "perceptual_scores",
    "pi_from_scores",
    "psnr_batch",
    "resolve_protocol",
    "spsr_cache_dir",
    "ssim_batch",
    "y_levels",
]
