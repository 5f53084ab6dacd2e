"""Resolve a run's configuration from preset, TOML file, flags and, on resume, the run folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spsr.archs.spec import ArchSpec
from spsr.errors import ConfigError
from spsr.run_folder import RunFolder
from spsr.train.config import (
    GENERATOR_BACKBONES,
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
    file, then ``arch`` (the generator), then ``backbone`` (see :func:`set_backbone`), then the
    architecture of the ``run.init`` checkpoint (see :func:`adopt_init_architecture`), then
    ``overrides`` (dotted keys; ``None`` values ignored).
    Resume: ``RUN/config.toml``; only the keys in ``RESUME_OVERRIDABLE`` may change.

    Raises:
        ConfigError: unknown keys or values, or a change that resuming does not allow.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    run_dir = Path(run_dir)
    if resume:
        stored_path = RunFolder(run_dir).config
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
    init = given.get("run.init") or cfg.run.init
    if init and cfg.stage != "nse":  # an NSE run's init is an extractor, not a generator
        explicit = {f"model.{k}" for k in file_data.get("model", {})}
        explicit |= {k for k in given if k.startswith("model.")}
        if arch is not None or backbone is not None:
            explicit |= {"model.arch", "model.backbone"}
        adopt_init_architecture(cfg, init_spec(str(init), given.get("model.scale")), explicit,
                                str(init), given)
    apply_overrides(cfg, given)
    return validate(cfg)


def init_spec(source: str, expected_scale: int | None = None) -> ArchSpec:
    """The architecture of a checkpoint given as ``--init`` (its metadata, or read from its keys)."""
    import json

    from spsr.errors import CheckpointError
    from spsr.infer.checkpoint import FORMAT, detect_spec, read_checkpoint, resolve_weights

    path = resolve_weights(source)
    state, metadata = read_checkpoint(path)
    try:
        if metadata.get("format") == FORMAT:
            return ArchSpec.from_dict(json.loads(metadata["arch"]))
        return detect_spec(state, expected_scale)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: cannot tell its architecture ({exc})") from None


# Fields of the generator that an init checkpoint decides (unless given explicitly).
_SIZE_FIELDS = ("scale", "nf", "nb", "gc")
_FLAGS = {"model.nf": "--nf", "model.nb": "--nb", "model.scale": "--scale", "model.arch": "--arch",
          "model.backbone": "--backbone"}


def adopt_init_architecture(
    cfg: TrainConfig,
    src: ArchSpec,
    explicit: set[str],
    init: str,
    given: Mapping[str, Any] | None = None,
) -> None:
    """Make the configured generator the one the init checkpoint holds, so ``--init RUN`` is enough.

    The generator's size (scale, nf, nb, gc), its backbone, tap points and options such as
    ``image_skip`` come from the checkpoint. The variant keeps its kind of generator where the
    init fits into it: a plain RRDB / EDSR / SRResNet checkpoint given to an SPSR variant fills the
    SR branch, so the SPSR generator takes that backbone and size. Options the variant itself sets
    (e.g. the U-Net follow-up's ``desubpixel_head``) stay.

    Args:
        cfg: the configuration so far (preset, TOML file, --arch / --backbone applied).
        src: the init checkpoint's architecture (:func:`init_spec`).
        explicit: dotted ``model.*`` keys the user set (TOML file, flags, ``--set``); they are not
            replaced, and one that contradicts the checkpoint is an error.
        init: the init source, for messages.
        given: the explicit override values (dotted keys), checked against the checkpoint.

    Raises:
        ConfigError: an explicit value the checkpoint cannot initialise, in one line.
    """
    m = cfg.model
    if m.arch == "spsr" and src.arch in GENERATOR_BACKBONES:
        wanted: dict[str, Any] = {"backbone": src.arch, "scale": src.scale, "nf": src.nf, "nb": src.nb}
        if src.arch == "rrdb":
            wanted["gc"] = src.gc
        extra: dict[str, Any] = {}
    else:
        wanted = {"arch": src.arch, "scale": src.scale, "nf": src.nf, "nb": src.nb}
        if src.arch in ("rrdb", "spsr"):
            wanted["gc"] = src.gc
        if src.arch == "spsr":
            wanted["backbone"] = src.backbone
            wanted["taps"] = list(src.taps or [])
        extra = dict(src.extra)
    probe = TrainConfig.from_dict(cfg.to_dict())  # the explicit values, converted to their types
    apply_overrides(probe, dict(given or {}))
    for key, value in wanted.items():
        dotted = f"model.{key}"
        if dotted not in explicit:
            setattr(m, key, value)
        elif key in (*_SIZE_FIELDS, "arch", "backbone") and getattr(probe.model, key) != value:
            flag = _FLAGS.get(dotted)
            said = f"{flag} {getattr(probe.model, key)}" if flag else f"{dotted}={getattr(probe.model, key)}"
            raise ConfigError(
                f"{said} conflicts with the --init checkpoint {init} ({src.describe()}, "
                f"{key} {value}); leave it out to take the checkpoint's"
            )
    m.extra = {**extra, **m.extra}


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and prefix == "":
            out.update(_flat(v, f"{key}."))
        else:
            out[key] = v
    return out
