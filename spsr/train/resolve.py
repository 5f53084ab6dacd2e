"""Resolve a run's configuration from preset, TOML file, flags and, on resume, the run folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spsr.errors import ConfigError
from spsr.train.config import (
    TrainConfig,
    apply_overrides,
    load_toml,
    merge_dict,
    set_arch,
    set_backbone,
    validate,
)
from spsr.train.variants import preset

# What may change when a run is resumed: where data and validation come from, how long and how
# often; nothing that changes what is being trained.
RESUME_OVERRIDABLE = frozenset({
    "run.iterations", "run.checkpoint_every", "run.checkpoint_minutes", "run.keep_states",
    "run.log_every", "run.device", "run.nan_patience", "data.path", "data.workers",
    "data.val_dir", "data.val_every", "data.val_limit", "data.val_tile", "data.val_precision",
    "data.val_protocol",
})


def resolve_config(
    variant: str | None,
    run_dir: str | os.PathLike[str],
    resume: bool = False,
    config_file: str | os.PathLike[str] | None = None,
    backbone: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    arch: str | None = None,
) -> TrainConfig:
    """The configuration a run trains with.

    Fresh run: the variant's preset (or the ``variant`` named in the TOML file), then the TOML
    file, then ``arch`` (the generator), then ``backbone`` (see :func:`set_backbone`), then
    ``overrides`` (dotted keys; ``None`` values ignored).
    Resume: ``RUN/config.toml``; only the keys in ``RESUME_OVERRIDABLE`` may change.

    Raises:
        ConfigError: unknown keys or values, or a change that resuming does not allow.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    run_dir = Path(run_dir)
    if resume:
        stored_path = run_dir / "config.toml"
        if not stored_path.is_file():
            raise ConfigError(f"nothing to resume: {stored_path} does not exist")
        cfg = TrainConfig.from_dict(load_toml(stored_path))
        if variant is not None and variant != cfg.variant:
            raise ConfigError(f"{run_dir} trains variant {cfg.variant!r}, not {variant!r}")
        if config_file is not None:
            raise ConfigError("--config cannot be combined with --resume (the run keeps its configuration)")
        if backbone is not None or arch is not None:
            raise ConfigError("the generator (--arch / --backbone) cannot change when resuming")
        probe = TrainConfig.from_dict(cfg.to_dict())
        apply_overrides(probe, given)
        before, after = _flat(cfg.to_dict()), _flat(probe.to_dict())
        changed = [k for k in after if after[k] != before.get(k) and k not in RESUME_OVERRIDABLE]
        if changed:
            key = changed[0]
            raise ConfigError(
                f"{key} cannot change when resuming (the run uses {before.get(key)!r}); "
                "start a new run with --init instead"
            )
        return validate(probe)
    file_data = load_toml(config_file) if config_file is not None else {}
    name = variant or file_data.get("variant") or "g"
    cfg = preset(str(name))
    merge_dict(cfg, {k: v for k, v in file_data.items() if k != "variant"})
    if arch is not None:
        set_arch(cfg, arch)
    if backbone is not None:
        set_backbone(cfg, backbone)
    apply_overrides(cfg, given)
    return validate(cfg)


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and prefix == "":
            out.update(_flat(v, f"{key}."))
        else:
            out[key] = v
    return out
