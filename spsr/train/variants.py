"""Registry of stages and variants: which stage trains a variant, and the variant's preset.

A *stage* is a :class:`~spsr.train.stage.Stage` subclass (how to train: PSNR, GAN, NSE pretext
task...). A *variant* is a name users pass to ``--variant`` with a preset configuration and the
stage that trains it. Register both from the stage's own module::

    register_stage("gan", GANStage)
    register_variant(Variant("esrgan", "gan", "ESRGAN: L1 + VGG + RaGAN", configure_esrgan))

and add the module's import path to ``BUILTIN_MODULES`` so the command line finds it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from spsr.errors import ConfigError
from spsr.train.config import TrainConfig

# Modules that register stages/variants when imported (append yours).
BUILTIN_MODULES = [
    "spsr.train.stages.psnr", "spsr.train.stages.gan", "spsr.train.stages.unet",
    "spsr.train.stages.nse", "spsr.train.stages.structure",
]

StageFactory = Callable[..., object]


@dataclass(frozen=True)
class Variant:
    """A named preset.

    Attributes:
        name: what ``--variant`` takes.
        stage: the registered stage that trains it.
        summary: one line for ``--help``.
        configure: sets the preset's values on a default :class:`TrainConfig`.
    """

    name: str
    stage: str
    summary: str
    configure: Callable[[TrainConfig], None]


_STAGES: dict[str, StageFactory] = {}
_VARIANTS: dict[str, Variant] = {}
_loaded = False


def register_stage(name: str, factory: StageFactory) -> None:
    """Register a stage class (called as ``factory(cfg, runtime)``)."""
    _STAGES[name] = factory


def register_variant(variant: Variant) -> None:
    """Register a variant (its stage may be registered before or after)."""
    _VARIANTS[variant.name] = variant


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def variants() -> dict[str, Variant]:
    """All registered variants by name."""
    _load_builtins()
    return dict(_VARIANTS)


def get_variant(name: str) -> Variant:
    _load_builtins()
    try:
        return _VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown variant {name!r}; choose one of {', '.join(sorted(_VARIANTS))}") from None


def get_stage(name: str) -> StageFactory:
    _load_builtins()
    try:
        return _STAGES[name]
    except KeyError:
        raise ConfigError(f"unknown training stage {name!r}; known: {', '.join(sorted(_STAGES))}") from None


def preset(name: str) -> TrainConfig:
    """The default configuration of variant ``name`` (papers' values)."""
    variant = get_variant(name)
    cfg = TrainConfig(stage=variant.stage, variant=variant.name)
    variant.configure(cfg)
    return cfg
