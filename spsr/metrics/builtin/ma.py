"""Ma et al.'s no-reference score (NRQM) with the authors' ``model.mat``, on Y with ``pi_border``
shaved (:func:`spsr.metrics.nrqm.ma_of_y`)."""

from __future__ import annotations

from typing import Any

from spsr.metrics.builtin.niqe import no_reference_note
from spsr.metrics.metric import FileUse, Metric, ScoreJob

#: Ma et al.'s regression forests (also what PI loads).
MA_MODEL_FILE = FileUse("ma-model", "ma_model", "--ma-model PATH")


def load(settings: Any, random_backbone: bool) -> object:
    from spsr.metrics.nrqm import load_ma_model

    return load_ma_model(settings.ma_model)


def compute(job: ScoreJob) -> float:
    from spsr.metrics.nrqm import ma_of_y

    return ma_of_y(job.y, job.resource("ma"))


METRIC = Metric(
    name="ma", label="Ma", higher_is_better=True, needs_reference=False, decimals=4,
    compute=compute,
    conventions={"ma": "Ma et al. 2017 (NRQM), the authors' model.mat, on Y, pi_border shaved"},
    notes=lambda scoring: (no_reference_note(scoring),),
    files=(MA_MODEL_FILE,),
    load=load,
)
