"""Resolve a run's configuration from its layers (preset, config file, architecture, init,
override layers such as an ablation row, ``--set`` and the command line's flags) and, on resume,
from the run folder: :func:`resolve_run`, the only caller of :func:`spsr.train.config.validate`."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from spsr import untrusted
from spsr.archs.registry import family
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


#: A resolution hook: called on a fresh run's configuration after every layer and before
#: :func:`validate`, with the dotted keys the override layers set (so it can leave them alone).
#: The NSE stage's epoch schedule is one (:class:`spsr.train.stages.nse.EpochSchedule`).
ResolveHook = Callable[[TrainConfig, frozenset[str]], None]


@dataclass(frozen=True)
class RunLayers:
    """The layers of a fresh run's configuration, applied in this order (the last one wins).

    1. ``variant``: its preset (:func:`spsr.train.variants.preset`); None: the ``variant`` the
       config file names, else ``g``;
    2. ``config_file``: a TOML file of configuration sections;
    3. ``arch``, then ``backbone``: the generator (:func:`set_arch`, :func:`set_backbone`);
    4. with ``adopt_init``, the architecture of the ``run.init`` checkpoint, for the fields no
       layer sets explicitly (:func:`adopt_init_architecture`); with ``adopt_init="size"`` only
       its size (scale, nf, nb, gc), the kind of generator staying the layers' own (an ablation
       row: ESRGAN and SPSR-G rows start from one PSNR-trained RRDB);
    5. ``overrides``: dotted-key layers in order; ``None`` values are "not given". ``spsr
       train``: its flags, then ``--set``; an ablation row: the grid's common overrides, the
       command line's, the row's own, then what the study fixes (data, budget, init, NSE).

    Attributes:
        variant: the preset.
        config_file: the TOML file (None: none).
        arch: the generator's architecture (None: the preset's).
        backbone: the SR-branch backbone (None: the preset's).
        overrides: the dotted-key layers.
        adopt_init: take the generator's architecture from ``run.init`` (``spsr train``), or
            ``"size"``: only its size (an ablation keeps each row's own kind of generator).
    """

    variant: str | None = None
    config_file: str | os.PathLike[str] | None = None
    arch: str | None = None
    backbone: str | None = None
    overrides: Sequence[Mapping[str, Any]] = ()
    adopt_init: bool | Literal["size"] = True

    def given(self) -> dict[str, Any]:
        """The override layers merged, later ones winning, ``None`` values left out."""
        out: dict[str, Any] = {}
        for layer in self.overrides:
            out.update({k: v for k, v in layer.items() if v is not None})
        return out


def resolve_run(
    layers: RunLayers,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    hook: ResolveHook | None = None,
) -> TrainConfig:
    """The configuration a run trains with, validated: the one place that calls :func:`validate`.

    Fresh run: ``layers`` in their order, then ``hook``. Resume: ``RUN/config.toml`` with the
    override layers applied; only the keys in ``RESUME_OVERRIDABLE`` may change, and neither the
    variant (unless the same), a config file nor the generator may be given.

    Raises:
        ConfigError: unknown keys or values, or a change that resuming does not allow.
    """
    given = layers.given()
    if resume:
        if run_dir is None:
            raise ConfigError("resuming needs the run folder")
        return validate(_resumed(layers, Path(run_dir), given))
    file_data = load_toml(layers.config_file) if layers.config_file is not None else {}
    cfg = preset(str(layers.variant or file_data.get("variant") or "g"))
    merge_dict(cfg, {k: v for k, v in file_data.items() if k != "variant"})
    if layers.arch is not None:
        set_arch(cfg, layers.arch)
    if layers.backbone is not None:
        set_backbone(cfg, layers.backbone)
    init = given.get("run.init") or cfg.run.init
    if layers.adopt_init and init and cfg.stage != "nse":  # an NSE run's init is an extractor
        explicit = {f"model.{k}" for k in file_data.get("model", {})}
        explicit |= {k for k in given if k.startswith("model.")}
        if layers.arch is not None or layers.backbone is not None:
            explicit |= {"model.arch", "model.backbone"}
        adopt_init_architecture(cfg, init_spec(str(init), given.get("model.scale")), explicit,
                                str(init), given, size_only=layers.adopt_init == "size")
    apply_overrides(cfg, given)
    if hook is not None:
        hook(cfg, frozenset(given))
    return validate(cfg)


def _resumed(layers: RunLayers, run_dir: Path, given: Mapping[str, Any]) -> TrainConfig:
    stored_path = RunFolder(run_dir).config
    if not stored_path.is_file():
        raise ConfigError(f"nothing to resume: {stored_path} does not exist")
    cfg = TrainConfig.from_dict(load_toml(stored_path))
    if layers.variant is not None and layers.variant != cfg.variant:
        raise ConfigError(f"{run_dir} trains variant {cfg.variant!r}, not {layers.variant!r}")
    if layers.config_file is not None:
        raise ConfigError(
            "--config cannot be combined with --resume (the run keeps its configuration)"
        )
    if layers.backbone is not None or layers.arch is not None:
        raise ConfigError("the generator (--arch / --backbone) cannot change when resuming")
    probe = TrainConfig.from_dict(cfg.to_dict())
    apply_overrides(probe, given)
    changed = changed_keys(cfg, probe, RESUME_OVERRIDABLE)
    if changed:
        key = changed[0]
        raise ConfigError(
            f"{key} cannot change when resuming (the run uses {flat_config(cfg).get(key)!r}); "
            "start a new run with --init instead"
        )
    return probe


def resolve_config(
    variant: str | None,
    run_dir: str | os.PathLike[str],
    resume: bool = False,
    config_file: str | os.PathLike[str] | None = None,
    backbone: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    arch: str | None = None,
) -> TrainConfig:
    """:func:`resolve_run` with one override layer (dotted keys; ``None`` values ignored)."""
    layers = RunLayers(variant, config_file, arch, backbone, [dict(overrides or {})])
    return resolve_run(layers, run_dir, resume)


def flat_config(cfg: TrainConfig) -> dict[str, Any]:
    """``{"stage": ..., "model.nf": 64, ...}``: every key of ``cfg`` as a dotted name."""
    out: dict[str, Any] = {}
    for key, value in cfg.to_dict().items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{sub}": subvalue for sub, subvalue in value.items()})
        else:
            out[key] = value
    return out


def changed_keys(
    before: TrainConfig, after: TrainConfig, allowed: Collection[str] = ()
) -> list[str]:
    """The dotted keys whose values differ between two configurations, sorted, less ``allowed``."""
    a, b = flat_config(before), flat_config(after)
    return [k for k in sorted(set(a) | set(b)) if k not in allowed and a.get(k) != b.get(k)]


def init_spec(source: str, expected_scale: int | None = None) -> ArchSpec:
    """The architecture of a checkpoint given as ``--init`` (its metadata, or read from its keys)."""

    from spsr.checkpoints.io import FORMAT, detect_spec, read_checkpoint, resolve_weights
    from spsr.errors import CheckpointError

    path = resolve_weights(source)
    state, metadata = read_checkpoint(path)
    try:
        if metadata.get("format") == FORMAT:
            return ArchSpec.from_dict(untrusted.loads(metadata["arch"], "metadata 'arch'"))
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
    size_only: bool = False,
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
        size_only: take only scale, nf, nb and gc (and the backbone of an SPSR generator from a
            plain-backbone init); the kind of generator and its options stay the configured ones.

    Raises:
        ConfigError: an explicit value the checkpoint cannot initialise, in one line.
    """
    m = cfg.model
    target, source = family(m.arch), family(src.arch)
    # A plain backbone checkpoint given to a generator that wraps one fills its SR branch.
    fills_branch = target.wraps_backbone and src.arch in GENERATOR_BACKBONES
    if fills_branch:
        wanted: dict[str, Any] = {"backbone": src.arch, "scale": src.scale, "nf": src.nf, "nb": src.nb}
        if source.growth_channels:
            wanted["gc"] = src.gc
        extra: dict[str, Any] = {}
    else:
        wanted = {"arch": src.arch, "scale": src.scale, "nf": src.nf, "nb": src.nb}
        if source.growth_channels:
            wanted["gc"] = src.gc
        if source.wraps_backbone:
            wanted["backbone"] = src.backbone
            wanted["taps"] = list(src.taps or [])
        extra = dict(src.extra)
    if size_only:
        keep = (*_SIZE_FIELDS, "backbone") if fills_branch else _SIZE_FIELDS
        wanted = {k: v for k, v in wanted.items() if k in keep}
        if "gc" in wanted and not (source.growth_channels and target.growth_channels):
            del wanted["gc"]
        extra = dict(src.extra) if src.arch == m.arch else {}
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

