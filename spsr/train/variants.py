"""The variant and stage registry: the built-in catalog plus what plugins register at run time.

The built-in variants are declared, torch-free, in :mod:`spsr.variant_catalog`; their stages are
imported only when a run needs one (:func:`get_stage`). A plugin adds its own from its module::

    register_stage("probe", ProbeStage)
    register_variant(Variant("probe", "probe", "what it trains", configure_probe))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from spsr.errors import ConfigError
from spsr.train.config import TrainConfig
from spsr.variant_catalog import STAGE_MODULES, Variant, catalog

__all__ = [
    "Variant", "get_stage", "get_variant", "preset", "register_stage", "register_variant",
    "variants",
]

StageFactory = Callable[..., object]

_STAGES: dict[str, StageFactory] = {}
_REGISTERED: dict[str, Variant] = {}


def register_stage(name: str, factory: StageFactory) -> None:
    """Register a stage class (called as ``factory(cfg, runtime)``)."""
    _STAGES[name] = factory


def register_variant(variant: Variant) -> None:
    """Register a variant (its stage may be registered before or after)."""
    _REGISTERED[variant.name] = variant


def variants() -> dict[str, Variant]:
    """All variants by name: the built-in catalog, then the registered ones."""
    return {**catalog(), **_REGISTERED}


def get_variant(name: str) -> Variant:
    known = variants()
    try:
        return known[name]
    except KeyError:
        choices = ", ".join(sorted(known))
        raise ConfigError(f"unknown variant {name!r}; choose one of {choices}") from None


def get_stage(name: str) -> StageFactory:
    """The stage class ``name`` (a built-in stage's module is imported on first use)."""
    if name not in _STAGES and name in STAGE_MODULES:
        importlib.import_module(STAGE_MODULES[name])  # registers it
    try:
        return _STAGES[name]
    except KeyError:
        known = sorted({*_STAGES, *STAGE_MODULES})
        raise ConfigError(f"unknown training stage {name!r}; known: {', '.join(known)}") from None


def preset(name: str) -> TrainConfig:
    """The default configuration of variant ``name`` (papers' values)."""
    variant = get_variant(name)
    cfg = TrainConfig(stage=variant.stage, variant=variant.name)
    variant.configure(cfg)
    return cfg
