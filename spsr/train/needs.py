"""The model files a training configuration, a metric or a name given to ``spsr fetch`` needs.

Each user declares its own files: a training stage in ``Stage.needs(cfg)``, a metric in its
:class:`~spsr.metrics.metric.Metric` (``files``); the files themselves are in :mod:`spsr.weights`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from spsr.errors import ConfigError
from spsr.metrics.registry import METRICS, metric_needs
from spsr.train.config import TrainConfig
from spsr.train.variants import get_stage, preset, variants
from spsr.weights import SPECS, Need


def training_needs(cfg: TrainConfig) -> list[Need]:
    """The ImageNet weights a training configuration loads before it starts, as its stage
    declares them (``Stage.needs``)."""
    declared: Any = getattr(get_stage(cfg.stage), "needs", None)
    return list(declared(cfg)) if declared is not None else []


def needs_for(names: Iterable[str]) -> list[Need]:
    """The files behind names a user can give ``spsr fetch``: metric names (``lpips``, ``ma``,
    ``pi`` ...), training variants (``g``, ``esrgan``, ``vgg``, ``resnet``, ``u`` ...), file keys
    (``alexnet``, ``vgg19``, ``resnet18``, ``ma-model``) or ``all`` (every file).

    Raises:
        ConfigError: a name that is none of these.
    """
    needs: list[Need] = []
    known_variants = variants()
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name == "all":
            needs.extend(Need(s, purpose=s.key) for s in SPECS.values())
        elif name in SPECS:
            needs.append(Need(SPECS[name], purpose=name))
        elif name in METRICS:
            needs.extend(metric_needs([name]))
        elif name in known_variants:
            needs.extend(
                Need(n.spec, None, n.option, f"variant {name}: {n.purpose}")
                for n in training_needs(preset(name))
            )
        else:
            raise ConfigError(
                f"unknown name {raw!r}: give metric names ({', '.join(METRICS)}), training variants "
                f"({', '.join(sorted(known_variants))}), files ({', '.join(SPECS)}) or all"
            )
    return needs
