"""A metric registered by tests/metrics/test_metric_registry.py as CONTRIBUTING.md's "Adding a metric"
says: this one module and one line in ``METRIC_MODULES``. The mean absolute 8-bit difference on
RGB, the protocol's border shaved (full-reference, lower is better)."""

from __future__ import annotations

import numpy as np

from spsr.metrics.conventions import Scoring, shave
from spsr.metrics.metric import Metric, ScoreJob


def compute(job: ScoreJob) -> float:
    border = job.scoring.crop_border
    sr, hr = (shave(a.astype(np.float64), border) for a in (job.sr, job.hr))
    return float(np.abs(sr - hr).mean())


def notes(scoring: Scoring) -> tuple[tuple[int, str], ...]:
    return ((60, f"MAE on RGB, border {scoring.crop_border} shaved"),)


METRIC = Metric(
    name="mae", label="MAE", higher_is_better=False, needs_reference=True, decimals=3,
    compute=compute,
    conventions={"mae": "mean |SR - HR| over pixels and RGB channels, 8-bit levels, crop_border shaved"},
    notes=notes,
    help="mean absolute error",
)
