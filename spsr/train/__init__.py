"""Training: one engine (:mod:`spsr.train.engine`) and the stages that configure it.

Public API::

    from spsr.train import Trainer, train, preset, resolve_run, RunLayers, TrainConfig, Stage
    cfg = preset("g")                       # SPSR-G as published
    cfg.data.path = "data/div2k_x4.h5"
    result = Trainer(cfg, "runs/spsr_g").run()
    # or as `spsr train` does: the layers (preset, config file, generator, overrides) resolved
    cfg = resolve_run(RunLayers("g", overrides=[{"data.path": "data/div2k_x4.h5"}]))

See :mod:`spsr.train.engine` for how to add a stage or a variant.
"""

from spsr.train.config import TrainConfig, apply_overrides, register_section
from spsr.train.engine import Trainer, TrainingDivergedError, TrainResult, train
from spsr.train.resolve import RunLayers, resolve_config, resolve_run
from spsr.train.runtime import Runtime, frozen
from spsr.train.stage import Stage, make_adam, make_multistep
from spsr.train.variants import Variant, preset, register_stage, register_variant, variants

__all__ = [
    "RunLayers",
    "Runtime",
    "Stage",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "Variant",
    "apply_overrides",
    "frozen",
    "make_adam",
    "make_multistep",
    "preset",
    "register_section",
    "register_stage",
    "register_variant",
    "resolve_config",
    "resolve_run",
    "train",
    "variants",
]
