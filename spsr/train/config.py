"""Training configuration: typed dataclasses whose defaults are the papers' values.

A configuration is a :class:`TrainConfig` made of sections (``model``, ``d``, ``optim``, ``loss``,
``data``, ``run``). It is built in layers, each overriding the previous one:

1. the defaults below (SPSR-G as published, CVPR 2020 §4.1);
2. the named preset of the variant (:mod:`spsr.variant_catalog`,
   :func:`spsr.train.variants.preset`);
3. an optional TOML file with the same sections (:func:`load_toml`);
4. command-line flags and ``--set section.key=value`` (:func:`apply_overrides`).

:func:`spsr.train.resolve.resolve_run` applies the layers (and an ablation row's) in this order
and is the one caller of :func:`validate`.

The resolved configuration is written to the run folder as ``config.toml`` and read back on
``--resume``. Stages added later can declare their own sections with :func:`register_section`
without editing this file; they then live in ``TrainConfig.extensions`` and in the TOML file
like the built-in ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin, get_type_hints

import tomli_w

from spsr.archs import ArchSpec
from spsr.archs.init import INIT_SCHEMES
from spsr.archs.registry import arch_names, backbone_names, default_blocks, family
from spsr.data.moa import MOA_OPS
from spsr.errors import ConfigError
from spsr.infer.precision import AMP_MODES
from spsr.metrics.conventions import protocol_names
from spsr.toml_io import read_toml
from spsr.variant_catalog import SECTION_MODULES

# The generators, backbones and their usual block counts come from the architecture registry
# (spsr.archs.registry): ESRGAN 23 RRDBs, EDSR / SRResNet 16 blocks.
ARCHS = arch_names()
GENERATOR_BACKBONES = backbone_names()
PERCEPTUAL_NETS = ("vgg", "lpips", "none", "vgg_random", "lpips_random")
DEFAULT_BLOCKS = default_blocks()
#: The architecture spec's defaults (SPSR-G ×4 on 23 RRDBs), which the model section shares.
_SPEC = ArchSpec()


@dataclass
class ModelConfig:
    """The generator: the TOML face of :class:`spsr.archs.ArchSpec`, one schema with it. Every
    field but ``weight_init`` is the spec's field of the same name, type and default, and the
    spec validates them against the registry's schema (:meth:`spec`); the spec's ``in_nc`` and
    ``out_nc`` are not configurable (training is on RGB images). tests/archs/test_arch_capabilities.py
    holds the two together.

    Attributes:
        arch: a registered architecture (``rrdb`` | ``spsr`` | ``edsr`` | ``srresnet``).
        backbone: SR-branch backbone when ``arch`` is ``spsr``.
        scale: upscaling factor.
        nf, nb, gc: feature channels, blocks, RRDB growth channels.
        taps: gradient-branch tap points (empty: spread evenly, 5/10/15/20 of 23).
        extra: further constructor options (e.g. ``res_scale`` for EDSR).
        weight_init: ``official`` (the reference code's scheme: Kaiming-normal × 0.1, zero
            biases, for SPSR / RRDB / SRResNet; PyTorch's default for EDSR, as EDSR-PyTorch) or
            ``pytorch`` (PyTorch's default for every generator); see :mod:`spsr.archs.init`.
            Layers filled by ``run.init`` keep the loaded values.
    """

    arch: str = _SPEC.arch
    backbone: str = _SPEC.backbone
    scale: int = _SPEC.scale
    nf: int = _SPEC.nf
    nb: int = _SPEC.nb
    gc: int = _SPEC.gc
    taps: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    weight_init: str = "official"

    def spec(self) -> ArchSpec:
        """The :class:`ArchSpec` this section describes."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in TRAINING_ONLY_MODEL_KEYS}
        values["taps"] = tuple(self.taps) or None
        values["extra"] = dict(self.extra)
        try:
            return ArchSpec(**values)
        except ValueError as exc:
            raise ConfigError(f"model: {exc}") from None


# ModelConfig fields that say how training starts the network, not what the network is.
TRAINING_ONLY_MODEL_KEYS = frozenset({"weight_init"})
# ArchSpec fields training does not configure: it trains on RGB images.
FIXED_SPEC_KEYS = frozenset({"in_nc", "out_nc"})


@dataclass
class DiscriminatorConfig:
    """The VGG-128 style discriminators (D on images, D_GM on gradient maps).

    Attributes:
        nf: channels of the first stage (64).
        hidden: width of the first linear layer (100).
        weight_init: ``official`` (Kaiming-normal scale 1, zero biases, BatchNorm 1 / 0, as the
            official code's discriminators) or ``pytorch`` (PyTorch's default), for every
            discriminator (D, D_GM, D_SF, U-Net D).
    """

    nf: int = 64
    hidden: int = 100
    weight_init: str = "official"


@dataclass
class OptimConfig:
    """Adam and the MultiStepLR schedule (CVPR 2020 §4.1).

    Attributes:
        lr_g, lr_d: learning rates of the generator and of every discriminator.
        beta1, beta2, eps: Adam's coefficients.
        weight_decay_g, weight_decay_d: L2 weight decay.
        milestones: iterations at which every learning rate is multiplied by ``gamma``.
        gamma: the decay factor (0.5: halve).
        grad_clip: clip the gradient norm of every network to this value (0: off).
    """

    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay_g: float = 0.0
    weight_decay_d: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [50_000, 100_000, 200_000, 300_000])
    gamma: float = 0.5
    grad_clip: float = 0.0


@dataclass
class LossConfig:
    """Loss weights and forms (SPSR-G, CVPR 2020 eq. 10; 0 switches a term off).

    Attributes:
        pixel: β_I, weight of the pixel loss on the SR image.
        pixel_criterion: ``l1`` | ``l2`` | ``charbonnier``.
        perceptual: weight of the perceptual loss.
        perceptual_net: ``vgg`` (L1 on VGG19 features), ``lpips`` (LPIPS AlexNet v0.1, the U-Net follow-up),
            ``none`` (train without a perceptual loss), or ``vgg_random`` / ``lpips_random``
            (random backbone weights: for smoke tests and benchmarks only, reads no file).
        perceptual_layer: VGG19 layer (``conv5_4``: before the ReLU).
        vgg_weights: VGG19 weights file (empty: torchvision's cache).
        lpips_weights: AlexNet ImageNet weights file for LPIPS (empty: torchvision's cache).
        gan: γ_I, weight of the adversarial loss on images.
        gan_type: ``ragan`` | ``vanilla`` | ``hinge``.
        gradient_pixel: β_GM, weight of the pixel loss on gradient maps.
        gradient_gan: γ_GM, weight of the adversarial loss on gradient maps (D_GM).
        branch: β_GB, weight of the L1 loss on the gradient branch's predicted map.
        gradient_form: ``paper`` (L1, padding 1) or ``official`` (MSE, padding 2, as the code).
    """

    pixel: float = 0.01
    pixel_criterion: str = "l1"
    perceptual: float = 1.0
    perceptual_net: str = "vgg"
    perceptual_layer: str = "conv5_4"
    vgg_weights: str = ""
    lpips_weights: str = ""
    gan: float = 0.005
    gan_type: str = "ragan"
    gradient_pixel: float = 0.01
    gradient_gan: float = 0.005
    branch: float = 0.5
    gradient_form: str = "paper"


@dataclass
class DataConfig:
    """Training data and validation.

    Attributes:
        path: the HDF5 patch store (``spsr prepare-data``).
        batch_size: global batch, split evenly over the processes (16, as ESRGAN and the U-Net
            follow-up; the SPSR papers write 15, CVPR 2020 §4.1 / TPAMI 2021 §5.1: set 15 to
            follow them, 30 to follow the official json, which splits it over 2 GPUs).
        lr_patch: LR crop side, taken at a random position inside each stored patch. 0 (the
            default): the papers' 32×32 when the store's LR patches are larger (as those of
            ``prepare-data``'s default 480×480 sub-images), else the whole stored patch.
        augment: random flips and 90° rotations (the ``nse`` stage: the augmentation
            ``nse.augment`` names, flips only by default; false turns it off).
        workers: data-loader worker processes per training process.
        val_dir: folder of HR images to validate on (empty: none).
        val_every: validate every N iterations (and at the end).
        val_limit: validate on at most N images (0: all).
        val_tile: tile size of validation inference, in LR pixels.
        val_precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` for validation inference.
        val_protocol: scoring protocol of validation, as ``spsr eval --protocol`` (``spsr``: the
            CVPR 2020 / TPAMI 2021 tables' SSIM; ``basicsr``: SSIM at full resolution).
        moa: MoA, a mixture of augmentations applied to every training batch
            (:mod:`spsr.data.moa`; the U-Net follow-up).
        moa_ops: the operations MoA draws from (``cutblur`` needs a generator with the desubpixel
            head and is skipped for the others).
        moa_prob: probability that a batch is augmented at all.
    """

    path: str = ""
    batch_size: int = 16
    lr_patch: int = 0
    augment: bool = True
    workers: int = 2
    val_dir: str = ""
    val_every: int = 5000
    val_limit: int = 0
    val_tile: int = 128
    val_precision: str = "auto"
    val_protocol: str = "spsr"
    moa: bool = False
    moa_ops: list[str] = field(default_factory=lambda: list(MOA_OPS))
    moa_prob: float = 1.0


@dataclass
class RunConfig:
    """The loop.

    Attributes:
        iterations: total iterations.
        checkpoint_every: write the resumable state and ``model.safetensors`` every N iterations.
        checkpoint_minutes: also write them when this many minutes of the session have passed
            since the last checkpoint (0: off), so a hard kill (SIGKILL, a node failure) loses
            a bounded amount of work. Timed checkpoints do not add numbered states.
        keep_states: also keep this many numbered states ``state/iter_N.pt`` (0: only ``last.pt``).
        log_every: write averaged losses to ``log.jsonl`` every N iterations.
        seed: seed of every random number generator.
        device: ``auto`` (CUDA when there is one), ``cpu``, ``cuda``, ``cuda:1``...
        amp: ``auto`` (bf16 on CUDA / fp16 + scaler on old GPUs / bf16 autocast on CPUs with
            native bf16), ``off``, ``bf16``, ``fp16`` (CUDA only).
        channels_last: channels-last memory format for the networks and batches: ``auto`` (on
            with autocast or CUDA: measured 1.6× faster with bf16 on this CPU, but 20 % slower
            in fp32 on the CPU), ``on``, ``off``.
        ema: decay of an exponential moving average of the generator (0: off); when on, the EMA
            weights are what ``model.safetensors`` / ``best.safetensors`` hold and validation uses.
        nan_patience: stop after this many consecutive iterations with a non-finite loss.
        deterministic: on CUDA, deterministic cuDNN / PyTorch kernels and no cuDNN autotuning,
            so a run (and a resumed run) repeats bit for bit; slower. Off: cuDNN picks the
            fastest convolution algorithms for the fixed patch size (``cudnn.benchmark``), and
            two runs agree only to float rounding. No effect on the CPU, which is deterministic.
        fusion_warmup: train only the fusion block for the first N iterations (official code: 5000).
        init: weights to start the generator from (a pretrain run folder or any checkpoint).
    """

    iterations: int = 400_000
    checkpoint_every: int = 5000
    checkpoint_minutes: float = 30.0
    keep_states: int = 0
    log_every: int = 100
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    ema: float = 0.0
    nan_patience: int = 20
    deterministic: bool = False
    fusion_warmup: int = 0
    init: str = ""


_EXTENSIONS: dict[str, type] = {}


def register_section(name: str, section: type) -> None:
    """Declare a configuration section for a stage added later (e.g. ``nse``).

    Args:
        name: the section's name in TOML and in ``--set name.key=value``.
        section: a dataclass whose fields all have defaults.
    """
    if not dataclasses.is_dataclass(section):
        raise TypeError("a configuration section must be a dataclass")
    if name in {f.name for f in dataclasses.fields(TrainConfig)}:
        raise ValueError(f"section name {name!r} is taken")
    _EXTENSIONS[name] = section


@dataclass
class TrainConfig:
    """A whole training configuration.

    Attributes:
        stage: the registered stage that trains (``psnr``, ``gan``, ...).
        variant: the named preset it started from (``psnr``, ``esrgan``, ``g``, ...).
        extensions: sections registered with :func:`register_section`, by name.
    """

    stage: str = "gan"
    variant: str = "g"
    model: ModelConfig = field(default_factory=ModelConfig)
    d: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    run: RunConfig = field(default_factory=RunConfig)
    extensions: dict[str, Any] = field(default_factory=dict)
    #: What :func:`validate` last passed (:meth:`to_dict`), so a resolved configuration is not
    #: checked twice; not part of the configuration.
    _validated_as: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def section(self, name: str) -> Any:
        """A built-in or registered section by name (registered ones are created on first use)."""
        if name in _SECTION_NAMES:
            return getattr(self, name)
        if name not in self.extensions:
            if name not in _EXTENSIONS:
                _import_section_module(name)  # sections are registered by the stages' modules
            if name not in _EXTENSIONS:
                raise ConfigError(_unknown("configuration section", name, _all_sections()))
            self.extensions[name] = _EXTENSIONS[name]()
        return self.extensions[name]

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (TOML/JSON friendly)."""
        out: dict[str, Any] = {"stage": self.stage, "variant": self.variant}
        for name in _SECTION_NAMES:
            out[name] = dataclasses.asdict(getattr(self, name))
        for name, value in sorted(self.extensions.items()):
            out[name] = dataclasses.asdict(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ConfigError`."""
        cfg = cls()
        merge_dict(cfg, data)
        return cfg


_SECTION_NAMES = ("model", "d", "optim", "loss", "data", "run")


def _import_section_module(name: str) -> None:
    """Import the stage module that registers section ``name`` (:data:`SECTION_MODULES`), e.g.
    before reading a run's ``config.toml`` with a stage's own section."""
    module = SECTION_MODULES.get(name)
    if module is not None:
        importlib.import_module(module)


def _all_sections() -> list[str]:
    """Every section name: built-in, of the built-in stages (registered or not yet), registered."""
    others = [e for e in _EXTENSIONS if e not in SECTION_MODULES]
    return [*_SECTION_NAMES, *SECTION_MODULES, *others]


def _unknown(what: str, name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(choices)})"
    return f"unknown {what} {name!r}{hint}"


def merge_dict(cfg: TrainConfig, data: Mapping[str, Any]) -> TrainConfig:
    """Apply a nested dict (a TOML file's content) onto ``cfg`` in place."""
    for key, value in data.items():
        if key in ("stage", "variant"):
            setattr(cfg, key, _coerce(str, value, key))
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(f"configuration key {key!r} must be a section (a TOML table)")
        section = cfg.section(key)
        for sub, subvalue in value.items():
            _set_field(section, f"{key}.{sub}", sub, subvalue)
    return cfg


def _set_field(section: Any, dotted: str, name: str, value: Any) -> None:
    names = [f.name for f in dataclasses.fields(section)]
    head, _, key = name.partition(".")
    if key and head in names and isinstance(getattr(section, head), dict):
        # One entry of a dict field: --set model.extra.image_skip=true (values parsed as JSON).
        if isinstance(value, str):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        getattr(section, head)[key] = value
        return
    if name not in names:
        raise ConfigError(_unknown("configuration key", dotted, [f"{dotted.split('.')[0]}.{n}" for n in names]))
    hint = get_type_hints(type(section))[name]
    setattr(section, name, _coerce(hint, value, dotted))


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Convert ``value`` (possibly a string from the command line) to the field type ``hint``."""
    origin = get_origin(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if hint is str:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
        if origin is list:
            (item,) = get_args(hint)
            if isinstance(value, str):
                value = [v for v in value.replace(" ", "").split(",") if v]
            if not isinstance(value, (list, tuple)):
                raise ValueError(value)
            return [_coerce(item, v, key) for v in value]
        if origin is dict:
            if not isinstance(value, Mapping):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid value {value!r} for {key} (expected {_type_name(hint)})") from None
    return value


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is list:
        return f"a comma-separated list of {_type_name(get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def apply_overrides(cfg: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """Set dotted keys (``loss.pixel``, ``optim.milestones``) in place, converting strings.

    Args:
        cfg: the configuration to change.
        overrides: dotted key → value; ``None`` values are skipped (flags not given).

    Returns:
        ``cfg``.
    """
    for dotted, value in overrides.items():
        if value is None:
            continue
        if dotted in ("stage", "variant"):
            setattr(cfg, dotted, str(value))
            continue
        if "." not in dotted:
            raise ConfigError(f"configuration key {dotted!r} must be section.key (e.g. loss.pixel)")
        section_name, name = dotted.split(".", 1)
        _set_field(cfg.section(section_name), dotted, name, value)
    return cfg


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["loss.pixel=0.02", ...]`` (the ``--set`` option) → ``{"loss.pixel": "0.02"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def set_backbone(cfg: TrainConfig, backbone: str) -> None:
    """Put a plain backbone under the configured generator.

    For an SPSR generator it becomes the SR branch's backbone, under the gradient branch (a model
    TPAMI 2021 does not report: its App. D models are the plain backbones, see :func:`set_arch`);
    for a plain generator it becomes the generator itself (``esrgan --backbone edsr`` trains
    EDSR-GAN). The block count follows
    the backbone's usual size (23 RRDBs, 16 EDSR / SRResNet blocks); set ``nb`` after to change it.
    """
    if backbone not in GENERATOR_BACKBONES:
        raise ConfigError(_unknown("backbone", backbone, list(GENERATOR_BACKBONES)))
    if family(cfg.model.arch).wraps_backbone:
        cfg.model.backbone = backbone
    else:
        cfg.model.arch = backbone
    cfg.model.nb = DEFAULT_BLOCKS[backbone]


def set_arch(cfg: TrainConfig, arch: str) -> None:
    """Choose the generator: ``spsr`` (keeps its backbone) or a plain ``rrdb|edsr|srresnet``,
    with the usual block count of its backbone.

    A plain generator has no gradient branch, so its branch loss is switched off; every other
    loss of the variant stays (``g`` on a plain EDSR is TPAMI 2021 App. D's EDSR-G: the gradient
    losses on M(SR) without the branch, as the "w/o GB" ablation of Table 2)."""
    if arch not in ARCHS:
        raise ConfigError(_unknown("architecture", arch, list(ARCHS)))
    cfg.model.arch = arch
    fam = family(arch)
    cfg.model.nb = DEFAULT_BLOCKS[cfg.model.backbone if fam.wraps_backbone else arch]
    if not fam.gradient_branch:
        cfg.loss.branch = 0.0


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML configuration file into a nested dict (apply it with :func:`merge_dict`)."""
    return read_toml(path, "configuration file")


def dump_toml(cfg: TrainConfig) -> str:
    """The resolved configuration as TOML text."""
    return tomli_w.dumps(cfg.to_dict())


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check values and combinations; raise :class:`ConfigError` on the first problem.

    :func:`spsr.train.resolve.resolve_run` calls it once per run; the engine then only checks
    that the configuration has not changed since (:func:`ensure_validated`).
    """
    _check(cfg)
    cfg._validated_as = cfg.to_dict()
    return cfg


def ensure_validated(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` as :func:`validate` left it, or validated now: one built by hand, or changed since."""
    if cfg._validated_as is not None and cfg._validated_as == cfg.to_dict():
        return cfg
    return validate(cfg)


def _check(cfg: TrainConfig) -> None:
    m, r, d, o, lo = cfg.model, cfg.run, cfg.data, cfg.optim, cfg.loss
    if m.arch not in ARCHS:
        raise ConfigError(_unknown("architecture", m.arch, list(ARCHS)))
    if m.backbone not in GENERATOR_BACKBONES:
        raise ConfigError(_unknown("backbone", m.backbone, list(GENERATOR_BACKBONES)))
    m.spec()  # scale and taps
    if min(m.nf, m.nb, m.gc) < 1:
        raise ConfigError("model.nf, model.nb and model.gc must be positive")
    if r.channels_last not in ("auto", "on", "off"):
        raise ConfigError(_unknown("channels_last mode", r.channels_last, ["auto", "on", "off"]))
    if r.amp not in AMP_MODES:
        raise ConfigError(_unknown("amp mode", r.amp, list(AMP_MODES)))
    if r.iterations < 1 or d.batch_size < 1:
        raise ConfigError("run.iterations and data.batch_size must be positive")
    if d.lr_patch < 0:
        raise ConfigError("data.lr_patch must be 0 (automatic) or a positive LR crop size")
    for key in ("checkpoint_every", "log_every"):
        if getattr(r, key) < 1:
            raise ConfigError(f"run.{key} must be positive")
    if not r.checkpoint_minutes >= 0:  # also rejects NaN
        raise ConfigError("run.checkpoint_minutes must be >= 0 (0 switches timed checkpoints off)")
    if d.val_every < 1:
        raise ConfigError("data.val_every must be positive")
    if d.val_protocol not in protocol_names():
        raise ConfigError(_unknown("validation protocol", d.val_protocol, list(protocol_names())))
    if not 0.0 <= r.ema < 1.0:
        raise ConfigError("run.ema is a decay in [0, 1) (0 switches EMA off)")
    if r.nan_patience < 1:
        raise ConfigError("run.nan_patience must be at least 1")
    if min(o.lr_g, o.lr_d) <= 0 or not 0 < o.gamma <= 1:
        raise ConfigError("learning rates must be positive and optim.gamma in (0, 1]")
    if sorted(o.milestones) != list(o.milestones) or any(x < 1 for x in o.milestones):
        raise ConfigError("optim.milestones must be increasing positive iterations")
    weights = ("pixel", "perceptual", "gan", "gradient_pixel", "gradient_gan", "branch")
    if any(getattr(lo, w) < 0 for w in weights):
        raise ConfigError("loss weights must be >= 0")
    if lo.perceptual_net not in PERCEPTUAL_NETS:
        raise ConfigError(_unknown("perceptual network", lo.perceptual_net, list(PERCEPTUAL_NETS)))
    if any(op not in MOA_OPS for op in d.moa_ops) or not d.moa_ops:
        raise ConfigError(f"data.moa_ops must be a non-empty list of {', '.join(MOA_OPS)}")
    if not 0.0 <= d.moa_prob <= 1.0:
        raise ConfigError("data.moa_prob is a probability in [0, 1]")
    for key, scheme in (("model.weight_init", m.weight_init), ("d.weight_init", cfg.d.weight_init)):
        if scheme not in INIT_SCHEMES:
            raise ConfigError(_unknown(f"{key} scheme", scheme, list(INIT_SCHEMES)))
    if lo.gradient_form not in ("paper", "official"):
        raise ConfigError(_unknown("gradient loss form", lo.gradient_form, ["paper", "official"]))
