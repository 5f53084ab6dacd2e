"""The Perceptual Index of PIRM 2018, ``((10 - Ma) + NIQE) / 2`` (:func:`spsr.metrics.pi.pi_from_scores`)."""

from __future__ import annotations

from spsr.metrics.builtin.ma import MA_MODEL_FILE
from spsr.metrics.builtin.niqe import no_reference_note
from spsr.metrics.metric import Metric, ScoreJob


def compute(job: ScoreJob) -> float:
    from spsr.metrics.pi import pi_from_scores

    return pi_from_scores(job.score("ma"), job.score("niqe"))


METRIC = Metric(
    name="pi", label="PI", higher_is_better=False, needs_reference=False, decimals=4,
    compute=compute,
    conventions={"pi": "((10 - Ma) + NIQE) / 2, both on Y with the same border shaved"},
    notes=lambda scoring: (no_reference_note(scoring),),
    files=(MA_MODEL_FILE,),
    uses=("ma", "niqe"),
)
