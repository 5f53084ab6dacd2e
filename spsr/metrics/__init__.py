"""Evaluation metrics in the papers' conventions: PSNR, SSIM, LPIPS, NIQE, Ma (NRQM), PI
and the gradient-map error (gradmap_l1).

Every metric takes 8-bit ``(H, W[, 3])`` arrays (float arrays in [0, 1] are quantised to 8 bits
first); :mod:`spsr.metrics.conventions` is the one place that decides how an image becomes numbers,
under a named protocol (``spsr``: the CVPR 2020 / TPAMI 2021 tables; ``basicsr``).
Heavy dependencies (the LPIPS network, Ma's forests) load only when asked for, and the names below
are imported on first use, so reading the metric registry (``--help`` texts) imports no torch.
Each metric is declared in one module of :mod:`spsr.metrics.builtin`; the registry is
:mod:`spsr.metrics.registry`.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DEFAULT_PROTOCOL": "conventions",
    "PROTOCOLS": "conventions",
    "MetricInputError": "conventions",
    "Protocol": "conventions",
    "Scoring": "conventions",
    "resolve_protocol": "conventions",
    "y_levels": "conventions",
    "calculate_gradmap_l1": "gradmap",
    "gradient_map_np": "gradmap",
    "calculate_niqe": "niqe",
    "niqe_of_y": "niqe",
    "MaModel": "nrqm",
    "calculate_ma": "nrqm",
    "default_ma_model_path": "nrqm",
    "find_ma_model": "nrqm",
    "load_ma_model": "nrqm",
    "ma_of_y": "nrqm",
    "spsr_cache_dir": "nrqm",
    "calculate_pi": "pi",
    "perceptual_scores": "pi",
    "pi_from_scores": "pi",
    "calculate_psnr": "psnr_ssim",
    "calculate_ssim": "psnr_ssim",
    "psnr_batch": "psnr_ssim",
    "ssim_batch": "psnr_ssim",
    "ALL_METRICS": "registry",
    "CONVENTIONS": "registry",
    "METRICS": "registry",
    "EvalSettings": "registry",
    "MetricSuite": "registry",
    "conventions_note": "registry",
    "metric_needs": "registry",
    "parse_metrics": "registry",
    "Metric": "metric",
    "ScoreJob": "metric",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"spsr.metrics.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'spsr.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
