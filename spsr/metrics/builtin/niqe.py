"""NIQE (Mittal et al. 2013) on Y with ``pi_border`` shaved (:func:`spsr.metrics.niqe.niqe_of_y`)."""

from __future__ import annotations

from spsr.metrics.conventions import Scoring
from spsr.metrics.metric import Metric, ScoreJob


def compute(job: ScoreJob) -> float:
    from spsr.metrics.niqe import niqe_of_y

    return niqe_of_y(job.y)


def no_reference_note(scoring: Scoring) -> tuple[int, str]:
    """The part of the line under a table that NIQE, Ma and PI share."""
    return 30, f"NIQE/Ma/PI on Y, border {scoring.pi_border} shaved"


METRIC = Metric(
    name="niqe", label="NIQE", higher_is_better=False, needs_reference=False, decimals=4,
    compute=compute,
    conventions={"niqe": "Mittal et al. 2013, official pristine parameters, 96x96 blocks, on Y, "
                 "pi_border shaved"},
    notes=lambda scoring: (no_reference_note(scoring),),
)
