"""The architecture registry: every generator family spsr builds, reads and initialises from.

Each family lives in one module of :mod:`spsr.archs.families` and declares, in a
:class:`Family`:

* how to recognise a state dict and read its hyperparameters from keys and shapes, renaming
  foreign key layouts (BasicSR, ESRGAN, EDSR-PyTorch...) to the keys its network uses
  (``detect``);
* how to build the network from an :class:`~spsr.archs.spec.ArchSpec` (``build``) and which
  ``extra`` options the spec may carry (``extra``);
* whether it can be the SR branch of an SPSR generator (``branch``) and which of a plain
  checkpoint's tensors initialise that branch (``branch_state``);
* the upstream layouts it reads, for the docs table (``layouts``, docs/formats.md);
* what callers need to know about its networks, its *capabilities*: a gradient branch
  (``gradient_branch``), another family as its SR branch (``wraps_backbone``, with the SR-branch
  keys under ``sr_branch_prefix``), RRDB growth channels (``growth_channels``), the LR image
  taken upsampled (``takes_upsampled_lr``), its default initialisation (``default_init``); which
  checkpoints can initialise it follows (:func:`init_route`).

Adding an architecture is one new family module plus one line in :data:`_FAMILY_MODULES`;
``build_model``, checkpoint detection, ``describe``, ``--init`` and the training
configuration's choices all derive from this registry. Code outside :mod:`spsr.archs` reads
capabilities and never compares family names (CONTRIBUTING.md, "Adding an architecture").
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from spsr.errors import CheckpointError

if TYPE_CHECKING:
    from spsr.archs.spec import ArchSpec

StateDict = dict[str, torch.Tensor]

#: One module per family, in detection order (the first family that recognises a state dict wins).
_FAMILY_MODULES = (
    "spsr.archs.families.spsr_g",
    "spsr.archs.families.rrdb",
    "spsr.archs.families.edsr",
    "spsr.archs.families.srresnet",
)


@dataclass(frozen=True)
class Layout:
    """A key layout a family reads (one row of the table in docs/formats.md).

    Attributes:
        project: the upstream project that saves it.
        name: the network's name there.
        scales: the scales it comes in, as text.
        keys: its characteristic keys.
    """

    project: str
    name: str
    scales: str
    keys: str


@dataclass(frozen=True)
class Detected:
    """What detection made of a state dict.

    Attributes:
        spec: the architecture and hyperparameters.
        state: the tensors under the keys ``build_model(spec)`` uses.
        layout: the layout recognised, e.g. ``BasicSR MSRResNet``.
        guesses: one line for each hyperparameter the keys could not tell (and what was assumed).
    """

    spec: ArchSpec
    state: StateDict
    layout: str
    guesses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    """One generator family (see the module docstring).

    Attributes:
        name: the ``ArchSpec.arch`` value (``rrdb``, ``spsr``...).
        title: the human name, e.g. ``RRDBNet (ESRGAN)``.
        scales: the scales it can be built at.
        default_nb: its usual block count (what ``--arch`` / ``--backbone`` set).
        build: ``ArchSpec → nn.Module`` with random weights.
        detect: ``(state dict, model scale or None) → Detected | None`` (None: not this family).
        extra: ``ArchSpec.extra`` keys this family accepts, with their types.
        check: raises ``ValueError`` for a spec this family cannot build (beyond the schema).
        layouts: the key layouts it reads.
        branch: ``(in_nc, out_nc, nf, nb, gc, scale, res_scale) → (module, shared HR conv or
            None)``: the family as the SR branch of an SPSR generator, a module with
            ``forward_features(x, taps)`` (``None``: it cannot be one).
        branch_state: ``(plain state, plain spec, SPSR spec) → state`` under the SPSR
            generator's SR-branch keys (``model.*``).
        from_wrapper_branch: ``(wrapper state, wrapper spec, this family's spec) → state``: this
            family's network from the SR branch of a generator that wraps it as ``backbone``
            (an SPSR-G's RRDB branch as an RRDBNet: the "w/o GB" ablation rows), or None.
        adapt_init: ``(state, source spec, target spec) → state`` to initialise a same-family
            network whose ``extra`` differs (e.g. EDSR's mean shift folded away), or None.
        describe_extra: the part of ``describe`` after ``nf``/``nb``.
        takes_upsampled_lr: whether a spec's generator takes the LR image nearest-upsampled to HR
            size (the U-Net follow-up's desubpixel head, §3.1), or None: never.
        gradient_branch: the generator has SPSR's gradient branch and returns an ``SROutput``
            (SR image and gradient map; CVPR 2020 §3.1); its training can use the branch loss.
        wraps_backbone: the generator's SR branch is another family, ``ArchSpec.backbone`` (a
            plain checkpoint of that family can initialise it, see :func:`init_route`).
        sr_branch_prefix: the key prefix of that SR branch in the generator's state dict.
        growth_channels: ``ArchSpec.gc`` (RRDB growth channels) is part of the network.
        default_init: the ``official`` initialisation of the family's reference code:
            ``kaiming`` (Kaiming-normal × 0.1, ESRGAN / SPSR / BasicSR) or ``pytorch`` (PyTorch's
            own defaults, as EDSR-PyTorch); see :mod:`spsr.archs.init`.
    """

    name: str
    title: str
    scales: tuple[int, ...]
    default_nb: int
    build: Callable[[ArchSpec], nn.Module]
    detect: Callable[[StateDict, int | None], Detected | None]
    extra: Mapping[str, type | tuple[type, ...]] = field(default_factory=dict)
    check: Callable[[ArchSpec], None] | None = None
    layouts: tuple[Layout, ...] = ()
    branch: Callable[..., tuple[nn.Module, nn.Module | None]] | None = None
    branch_state: Callable[[StateDict, ArchSpec, ArchSpec], StateDict] | None = None
    adapt_init: Callable[[StateDict, ArchSpec, ArchSpec], StateDict] | None = None
    from_wrapper_branch: Callable[[StateDict, ArchSpec, ArchSpec], StateDict] | None = None
    describe_extra: Callable[[ArchSpec], str] | None = None
    takes_upsampled_lr: Callable[[ArchSpec], bool] | None = None
    gradient_branch: bool = False
    wraps_backbone: bool = False
    sr_branch_prefix: str = ""
    growth_channels: bool = False
    default_init: str = "kaiming"


_REGISTRY: dict[str, Family] = {}


def families() -> dict[str, Family]:
    """Every registered family by name, in detection order."""
    if not _REGISTRY:
        for module in _FAMILY_MODULES:
            fam: Family = importlib.import_module(module).FAMILY
            _REGISTRY[fam.name] = fam
    return _REGISTRY


def family(name: str) -> Family:
    """The family called ``name``; ``ValueError`` naming the known ones otherwise."""
    found = families().get(name)
    if found is None:
        raise ValueError(f"unknown architecture {name!r}; use one of {', '.join(arch_names())}")
    return found


def arch_names() -> tuple[str, ...]:
    """The ``ArchSpec.arch`` values spsr builds."""
    return tuple(families())


def backbone_names() -> tuple[str, ...]:
    """The families that can be the SR branch of an SPSR generator (and plain generators)."""
    return tuple(n for n, f in families().items() if f.branch is not None)


def default_blocks() -> dict[str, int]:
    """Each family's usual block count."""
    return {n: f.default_nb for n, f in families().items()}


def init_route(source: ArchSpec, target: ArchSpec) -> str | None:
    """How a checkpoint of ``source`` initialises a generator of ``target`` (``--init``):
    ``"same"`` (the same architecture: the same family, and for a family that wraps a backbone
    the same backbone; loaded strictly after the family's ``adapt_init``), ``"sr_branch"`` (a
    plain checkpoint of the target's backbone family fills its SR branch), ``"from_branch"`` (the
    SR branch of a generator that wraps the target's family becomes the target, the family's
    ``from_wrapper_branch``), or None (it cannot)."""
    fam = family(target.arch)
    if source.arch == target.arch and (not fam.wraps_backbone or source.backbone == target.backbone):
        return "same"
    if fam.wraps_backbone and source.arch == target.backbone and family(source.arch).branch_state is not None:
        return "sr_branch"
    if (fam.from_wrapper_branch is not None and family(source.arch).wraps_backbone
            and source.backbone == target.arch):
        return "from_branch"
    return None


# --------------------------------------------------------------------------- detection


def detect(state: StateDict, model_scale: int | None = None) -> Detected:
    """Recognise a generator state dict: the first family whose ``detect`` accepts it.

    Args:
        state: the tensors (wrappers and ``module.`` prefixes already removed).
        model_scale: the scale the user says the checkpoint is for (``--model-scale``), used
            where the keys cannot tell (nearest-neighbour up-convs: ×2 and ×3 look alike).

    Raises:
        CheckpointError: no family recognises it, or it is partial or damaged.
    """
    for fam in families().values():
        try:
            found = fam.detect(state, model_scale)
        except CheckpointError:
            raise
        except KeyError as exc:
            raise CheckpointError(
                f"incomplete {fam.title} checkpoint: no {exc.args[0]} (partial or damaged file)"
            ) from None
        except (ValueError, IndexError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"damaged {fam.title} checkpoint ({exc})") from None
        if found is not None:
            if model_scale is not None and found.spec.scale != model_scale:
                raise CheckpointError(
                    f"{found.layout} weights are for x{found.spec.scale} (the keys tell), but "
                    f"x{model_scale} was asked for"
                )
            return found
    sample = ", ".join(list(state)[:4])
    raise CheckpointError(
        f"unrecognised checkpoint layout (first keys: {sample}); spsr reads SPSR, ESRGAN/RRDBNet, "
        "EDSR and SRResNet checkpoints (docs/formats.md: Supported checkpoints)"
    )


# --------------------------------------------------------------------------- helpers for families


def count_blocks(state: Mapping[str, Any], pattern: str) -> int:
    """``max(N) + 1`` over the keys matching ``pattern`` (one group: the index N), or 0."""
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def indices(state: Mapping[str, Any], pattern: str) -> list[int]:
    """The sorted indices N of the keys matching ``pattern`` (one group)."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.match(k))})


def conv_shape(state: StateDict, key: str) -> tuple[int, int]:
    """``(out, in)`` channels of a conv weight, refusing tensors that are not 4-D."""
    w = state[key]
    if w.dim() != 4:
        raise CheckpointError(f"{key} has shape {tuple(w.shape)}, not that of a convolution weight")
    return int(w.shape[0]), int(w.shape[1])


def rename(state: StateDict, rules: list[tuple[str, str]], layout: str) -> StateDict:
    """Rename every key by the first matching ``(regex, replacement)`` rule.

    Raises:
        CheckpointError: a key no rule covers (it would be left unused), naming up to three.
    """
    compiled = [(re.compile(rx + r"$"), repl) for rx, repl in rules]
    out: StateDict = {}
    unused: list[str] = []
    for key, value in state.items():
        for rx, repl in compiled:
            if rx.match(key):
                out[rx.sub(repl, key)] = value
                break
        else:
            unused.append(key)
    if unused:
        raise CheckpointError(
            f"{layout} checkpoint has {len(unused)} key(s) this layout does not use "
            f"(e.g. {', '.join(unused[:3])}): refused rather than loaded partly"
        )
    return out


def scale_from_nearest_upconvs(n_up: int, model_scale: int | None, what: str) -> tuple[int, tuple[str, ...]]:
    """The scale of a network whose up-convs follow nearest-neighbour upsampling (ESRGAN, SPSR).

    One up-conv is ×2 or ×3 (same weights); the keys cannot tell, so ``model_scale`` decides
    and, without it, ×2 is assumed and reported as a guess.
    """
    if n_up == 1:
        if model_scale in (2, 3):
            return model_scale, ()
        return 2, (f"{what}: the keys cannot tell x2 from x3; assumed x2 (say --model-scale 3 if it is x3)",)
    scale = {2: 4, 3: 8}.get(n_up)
    if scale is None:
        raise CheckpointError(f"{what} with {n_up} up-convolutions: no supported scale")
    return scale, ()


# --------------------------------------------------------------------------- building


def parameter_count(spec: ArchSpec) -> int:
    """The number of parameters ``build_model(spec)`` would have, without allocating them."""
    with torch.device("meta"):
        model = family(spec.arch).build(spec)
    return sum(p.numel() for p in model.parameters())
