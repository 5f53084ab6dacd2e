"""Reading and writing generator weights; architecture detection from keys and shapes.

We write ``.safetensors`` with the ``ArchSpec`` and provenance in the metadata. We read those
and every layout the architecture registry knows (:mod:`spsr.archs.registry`: the official SPSR
``.pth``, ESRGAN / BasicSR / Real-ESRGAN RRDBNet, EDSR-PyTorch and BasicSR EDSR, BasicSR
MSRResNet), inside wrapped dicts (``params_ema`` over ``params``, ``state_dict``, ``model``;
``module.`` prefixes). Foreign ``.pth`` files are read with ``torch.load(weights_only=True)``
only: never full unpickling. Everything is validated before a network is built
(:func:`inspect_checkpoint`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import spsr
from spsr.archs.registry import detect, family
from spsr.archs.spec import ArchSpec, build_model
from spsr.atomic import atomic_path
from spsr.errors import CheckpointError
from spsr.run_folder import MODEL_FILE

FORMAT = "spsr-weights"
FORMAT_VERSION = "1"
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "weights"
#: The named built-in models (``spsr/tools/train_default_models.sh`` trains and installs them).
BUILTIN_WEIGHTS = {
    "psnr": "spsr_psnr_x4.safetensors",
}
#: Built-in names that earlier releases shipped, and why they are gone (README "Built-in models").
WITHDRAWN_WEIGHTS = {
    "perceptual": (
        "the built-in 'perceptual' model was withdrawn: trained on a CPU without ImageNet (VGG) "
        "weights it stayed below bicubic PSNR on Set5 and Set14 (README, Built-in models); use "
        "--weights psnr, the official SPSR weights, or a model you trained"
    ),
}
#: What ``default`` (and ``spsr upscale`` without ``--weights``) loads; README "Built-in models"
#: shows the comparison this choice rests on.
DEFAULT_WEIGHTS = "psnr"
BUILTIN_NAMES = ("default", *BUILTIN_WEIGHTS)

StateDict = dict[str, torch.Tensor]


@dataclass
class LoadedModel:
    """A generator ready for inference, with what its file said about it."""

    model: nn.Module
    spec: ArchSpec
    metadata: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    warnings: list[str] = field(default_factory=list)
    layout: str = "spsr"


# --------------------------------------------------------------------------- reading


def resolve_weights(source: str | os.PathLike[str]) -> Path:
    """A weights file from a file path, a run folder, or a built-in name."""
    text = str(source)
    if text in WITHDRAWN_WEIGHTS and not Path(text).exists():
        raise CheckpointError(WITHDRAWN_WEIGHTS[text])
    if text in BUILTIN_NAMES and not Path(text).exists():
        path = ASSET_DIR / BUILTIN_WEIGHTS[DEFAULT_WEIGHTS if text == "default" else text]
        if not path.is_file():
            available = [n for n, f in BUILTIN_WEIGHTS.items() if (ASSET_DIR / f).is_file()]
            raise CheckpointError(
                f"built-in weights {text!r} are not installed (available: {', '.join(available) or 'none'})"
            )
        return path
    path = Path(source)
    if path.is_dir():
        candidate = path / MODEL_FILE
        if not candidate.is_file():
            raise CheckpointError(f"{path}: run folder has no {MODEL_FILE} (has training saved a checkpoint yet?)")
        return candidate
    if not path.exists():
        raise CheckpointError(f"{path}: no such weights file or run folder")
    return path


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[StateDict, dict[str, str]]:
    """Read a weights file into ``(state_dict, metadata)`` without building a model."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                metadata = dict(fh.metadata() or {})
                state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - not a dict
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable .safetensors file (truncated or corrupt: {exc})") from None
        return state, metadata
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CheckpointError(
            f"{path}: cannot read checkpoint (truncated, corrupt or not a weights file: {msg})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - pickle.UnpicklingError for unsafe globals, among others
        msg = str(exc).splitlines()[0]
        raise CheckpointError(
            f"{path}: refused or unreadable checkpoint ({msg}); only plain tensors are loaded"
        ) from None
    return unwrap_state_dict(obj, path), {}


def unwrap_state_dict(obj: Any, path: Path | str = "checkpoint") -> StateDict:
    """Find the generator's state dict inside common wrappers and strip ``module.`` prefixes."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            for key in ("params_ema", "params", "state_dict", "model", "generator", "netG"):
                if key in obj and isinstance(obj[key], Mapping):
                    obj = obj[key]
                    break
            else:
                break
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise CheckpointError(f"{path}: no state dict of tensors found (unknown layout)")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _is_state_dict(obj: Mapping[str, Any]) -> bool:
    values = list(obj.values())
    return bool(values) and sum(isinstance(v, torch.Tensor) for v in values) >= max(1, len(values) // 2)


# --------------------------------------------------------------------------- layouts and validation

#: Networks above this many parameters are refused before they are built (the largest published
#: generators here, EDSR 32x256, have 43 M): metadata asking for more is damaged or hostile.
MAX_PARAMETERS = 200_000_000


@dataclass
class Inspected:
    """A checkpoint read and checked, before any network is built.

    Attributes:
        spec: the architecture (from spsr's metadata, or detected from keys and shapes).
        state: the tensors under the keys ``build_model(spec)`` uses.
        metadata: the raw ``.safetensors`` metadata (empty for ``.pth``).
        layout: the layout recognised (``spsr`` for files spsr wrote).
        warnings: one line for each thing that had to be guessed or looks wrong.
        ghost: the network built on the ``meta`` device (shapes only) to check the tensors against;
            :func:`load_model` gives it the tensors instead of building a second network.
    """

    spec: ArchSpec
    state: StateDict
    metadata: dict[str, str]
    layout: str
    warnings: list[str] = field(default_factory=list)
    ghost: nn.Module | None = None


def detect_spec(state: StateDict, expected_scale: int | None = None) -> ArchSpec:
    """Infer the architecture and hyperparameters of a generator state dict from keys and shapes.

    ``expected_scale`` settles what the keys cannot tell (×2 vs ×3 behind nearest-neighbour
    up-convs). See :func:`spsr.archs.registry.detect` for the renamed state dict and the guesses.
    """
    return detect(state, expected_scale).spec


def to_old_esrgan_layout(state: StateDict) -> StateDict:
    """Rename an ESRGAN-repo (``RRDB_trunk``) or BasicSR (``body.N.rdb1``) state dict to ``model.N`` keys.

    Kept for older callers; other state dicts come back unchanged.
    """
    from spsr.archs.families import rrdb

    found = rrdb.detect(state, None)
    return found.state if found is not None else state


def _spec_from_metadata(metadata: Mapping[str, str], path: Path) -> ArchSpec:
    version = metadata.get("format_version", "")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: spsr weights format version {version!r} is not {FORMAT_VERSION!r} "
                              "(written by another spsr version?)")
    try:
        return ArchSpec.from_dict(json.loads(metadata["arch"]))
    except KeyError:
        raise CheckpointError(f"{path}: spsr weights without architecture metadata") from None
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: broken architecture metadata ({exc})") from None


def check_fits(spec: ArchSpec, state: StateDict, what: str) -> nn.Module:
    """Refuse a spec too large to build, or a state dict that does not fit it, without allocating.

    The network is built on the ``meta`` device (shapes only), so a 180-byte file whose metadata
    asks for a giant network costs nothing; it is returned, to be given the tensors
    (:func:`materialize`).
    """
    import torch

    # Every family's block holds at least one nf×nf 3×3 conv: a lower bound that refuses hostile
    # sizes at once (building 1024 blocks of 2048 channels even on ``meta`` takes seconds).
    if spec.nb * spec.nf * spec.nf * 9 > MAX_PARAMETERS:
        raise CheckpointError(
            f"{what}: {spec.describe()} would have over {spec.nb * spec.nf**2 * 9 / 1e6:.0f} M parameters "
            f"(limit {MAX_PARAMETERS / 1e6:.0f} M): refused"
        )
    try:
        with torch.device("meta"):
            ghost = build_model(spec)
    except ValueError as exc:
        raise CheckpointError(f"{what}: {spec.describe()} cannot be built ({exc})") from None
    n_params = sum(p.numel() for p in ghost.parameters())
    if n_params > MAX_PARAMETERS:
        raise CheckpointError(
            f"{what}: {spec.describe()} would have {n_params / 1e6:.0f} M parameters "
            f"(limit {MAX_PARAMETERS / 1e6:.0f} M): refused"
        )
    _check_keys(ghost.state_dict(), state, what)
    return ghost


def materialize(ghost: nn.Module, state: StateDict) -> nn.Module | None:
    """Give a ``meta`` network (:func:`check_fits`) the checked tensors as its parameters.

    No second network is built and nothing is initialised only to be overwritten: the weights of
    the full SPSR-G load in ~0.05 s instead of ~0.7 s (build with random init, then copy), which a
    one-image ``spsr upscale`` pays in full. Tensors take the network's dtypes and become
    contiguous. ``None`` when the network keeps a buffer outside its state dict (non-persistent),
    which only a real build can fill.
    """
    own = ghost.state_dict()
    if any(name not in own for name, _ in ghost.named_buffers(remove_duplicate=False)):
        return None
    tensors = {k: v.to(own[k].dtype).contiguous() for k, v in state.items()}
    ghost.load_state_dict(tensors, strict=True, assign=True)
    return ghost


def _check_keys(own: Mapping[str, Any], state: StateDict, what: str) -> None:
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if mismatched:
        problems.append(f"{len(mismatched)} with other shapes (e.g. {mismatched[0]})")
    if problems:
        raise CheckpointError(f"{what} does not fit the model: keys " + "; ".join(problems))


def check_finite(state: StateDict, what: str) -> None:
    """Refuse weights holding NaN or infinity (they would write black or garbage images).

    One fp64 sum per tensor, a single check at the end: NaN and infinity survive a sum, and an
    fp64 sum of finite fp32/fp16/bf16 values cannot overflow, so the test is exact. That is ~25 ms
    for SPSR-G's ~900 tensors (concatenating them and testing every value took ~120 ms, and a
    check per tensor costs a thread synchronisation each, seconds on a busy CPU); the culprits are
    looked for only when it fails.
    """
    floats = [(k, v) for k, v in state.items() if v.is_floating_point() and v.numel()]
    if not floats or bool(torch.stack([v.detach().sum(dtype=torch.float64) for _, v in floats]).isfinite().all()):
        return
    bad = [k for k, v in floats if not bool(v.isfinite().all())]
    if bad:
        raise CheckpointError(f"{what}: {len(bad)} tensor(s) hold NaN or infinite values (e.g. {bad[0]}): refused")


def _builtin_twin(state: StateDict) -> tuple[str, ArchSpec] | None:
    """The built-in model whose tensors these are (re-saved without spsr's metadata), if any."""
    from safetensors import safe_open

    for name, file in BUILTIN_WEIGHTS.items():
        path = ASSET_DIR / file
        if not path.is_file():
            continue
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            keys = set(fh.keys())
            if keys != set(state):
                continue
            probe = min(keys)
            if not all(tuple(fh.get_slice(k).get_shape()) == tuple(state[k].shape) for k in keys):
                continue
            if not (fh.get_tensor(probe).equal(state[probe]) and
                    fh.get_tensor("f_HR_conv1.0.weight").equal(state["f_HR_conv1.0.weight"])):
                continue
            return name, _spec_from_metadata(dict(fh.metadata() or {}), path)
    return None


def inspect_checkpoint(source: str | os.PathLike[str], model_scale: int | None = None) -> Inspected:
    """Read a checkpoint, work out its architecture and check it, building no network.

    Files spsr wrote carry their :class:`ArchSpec`, validated against its schema; anything else
    is recognised by the architecture registry, its keys renamed to spsr's. Then, for both, the
    spec's size is checked against :data:`MAX_PARAMETERS`, the tensors against the spec's keys
    and shapes, and their values for NaN / infinity.

    Args:
        source: a weights file, run folder or built-in name.
        model_scale: the scale the user says the weights are for (``--model-scale``): settles
            what the keys cannot tell, and is checked against what they can.
    """
    path = resolve_weights(source)
    state, metadata = read_checkpoint(path)
    warnings: list[str] = []
    if metadata.get("format") == FORMAT:
        spec, layout = _spec_from_metadata(metadata, path), "spsr"
        if model_scale is not None and spec.scale != model_scale:
            raise CheckpointError(f"{path}: weights are for x{spec.scale}, but x{model_scale} was asked for")
    else:
        found = detect(state, model_scale)
        spec, state, layout = found.spec, found.state, found.layout
        warnings += [f"{path.name}: {g}" for g in found.guesses]
        twin = _builtin_twin(state) if spec.arch == "spsr" else None
        if twin is not None and twin[1] != spec:
            spec = twin[1]
            warnings.append(f"{path.name}: these are the built-in {twin[0]!r} weights saved without their "
                            f"metadata; using its architecture ({spec.describe()}, extra {spec.extra})")
    ghost = check_fits(spec, state, str(path))
    check_finite(state, str(path))
    return Inspected(spec, state, metadata, layout, warnings, ghost)


def _load_strict(model: nn.Module, state: StateDict, what: str) -> None:
    _check_keys(model.state_dict(), state, what)
    model.load_state_dict(state, strict=True)


def _probe_output(model: nn.Module, spec: ArchSpec) -> str | None:
    """A warning when the model turns a mid-grey test image nearly black (a lost image skip)."""
    import torch

    from spsr.archs import sr_of

    side = 8
    ramp = torch.linspace(0.3, 0.7, side)
    x = (ramp[None, :] + ramp[:, None]).div(2).expand(1, spec.in_nc, side, side).contiguous()
    with torch.inference_mode():
        y = sr_of(model(x.to(next(model.parameters()).device))).float()
    if not bool(y.isfinite().all()):
        return "the model gives non-finite values on a test image"
    if float(y.mean()) < 0.1:
        return (f"the model turns a mid-grey test image nearly black (mean {float(y.mean()):.3f}): weights "
                "trained with image_skip (as spsr's built-in models) need the .safetensors spsr wrote")
    return None


def load_model(
    source: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    expected_scale: int | None = None,
    model_scale: int | None = None,
) -> LoadedModel:
    """Build and load a generator from a weights file, a run folder or a built-in name.

    Args:
        source: ``.safetensors`` / ``.pth`` path, run folder, or ``default`` / ``psnr`` / ``perceptual``.
        device: where to put the model.
        expected_scale: fail clearly if the weights are for another scale.
        model_scale: the scale the weights are for, where their keys cannot tell (``--model-scale``).

    Returns:
        The model in eval mode with its spec, metadata and warnings (guessed hyperparameters...).
    """
    checked = inspect_checkpoint(source, model_scale if model_scale is not None else expected_scale)
    path, spec = resolve_weights(source), checked.spec
    if expected_scale is not None and spec.scale != expected_scale:
        raise CheckpointError(f"{path}: weights are for x{spec.scale}, but x{expected_scale} was asked for")
    model = materialize(checked.ghost, checked.state) if checked.ghost is not None else None
    if model is None:
        model = build_model(spec)
        _load_strict(model, checked.state, str(path))
    model.eval().requires_grad_(False)
    warnings = list(checked.warnings)
    if checked.layout != "spsr" and spec.arch == "spsr" and not spec.extra.get("image_skip"):
        note = _probe_output(model, spec)
        if note:
            warnings.append(f"{path.name}: {note}")
    model.to(device)
    parsed = {k: _maybe_json(v) for k, v in checked.metadata.items()}
    return LoadedModel(model, spec, parsed, path, warnings, checked.layout)


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


# --------------------------------------------------------------------------- writing


def save_weights(
    path: str | os.PathLike[str],
    model: nn.Module,
    spec: ArchSpec,
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write a generator as ``.safetensors`` with its spec and provenance, atomically.

    Tensors shared between keys (SPSR's ``HR_conv0_new`` is ``model.8``) are stored once each.
    """
    from safetensors.torch import save_file

    path = Path(path)
    inner = getattr(model, "module", None)  # the model inside a DDP wrapper
    module = inner if isinstance(inner, nn.Module) else model
    state = {k: v.detach().to("cpu").clone().contiguous() for k, v in module.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": spec.to_json(),
        "scale": str(spec.scale),
        "spsr_version": spsr.__version__,
        "provenance": json.dumps(dict(provenance or {}), sort_keys=True, default=str),
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


# --------------------------------------------------------------------------- initialisation


# The convs that see the generator's input: the SR branch's first conv (RRDB, in the ESRGAN
# layout too, EDSR, SRResNet) and the gradient branch's first conv.
DESUBPIXEL_HEAD_KEYS = (
    "model.0.weight", "model.head.0.weight", "model.conv_first.weight", "b_fea_conv.0.weight",
)


def spread_to_desubpixel_head(state: StateDict, own: StateDict, scale: int) -> StateDict:
    """Fit a checkpoint's input convs to a generator with the desubpixel head.

    The head sees the LR image nearest-upsampled and brought back by ``pixel_unshuffle``: input
    channel ``c·s² + k`` is channel ``c`` of the LR image at every sub-pixel position ``k``. A
    conv weight ``W`` (out, C, kh, kw) copied to each of the ``s²`` positions and divided by
    ``s²`` therefore computes exactly ``W * LR`` on such an input: the SR branch starts as the
    checkpoint's. The gradient branch's conv sees M of the upsampled image, which is not M(LR)
    unshuffled, so there the same spreading is only a starting point.

    Args:
        state: the checkpoint's state dict.
        own: the generator's state dict (the target shapes).
        scale: the SR factor ``s``.

    Returns:
        ``state`` with the head weights spread; other keys unchanged.
    """
    out = dict(state)
    area = scale * scale
    for key in DESUBPIXEL_HEAD_KEYS:
        if key not in state or key not in own:
            continue
        src, dst = state[key], own[key]
        if src.dim() == 4 and dst.shape == (src.shape[0], src.shape[1] * area, *src.shape[2:]):
            out[key] = src.repeat_interleave(area, dim=1) / area
    return out


def load_init(
    model: nn.Module, spec: ArchSpec, source: str | os.PathLike[str], warnings: list[str] | None = None
) -> list[str]:
    """Initialise ``model`` from any checkpoint this module reads.

    The same architecture loads strictly; for a family with ``adapt_init`` (EDSR) differences
    in ``extra`` are folded into the weights (an EDSR-PyTorch checkpoint, mean shift and
    ``rgb_range`` 255, initialises spsr's [0, 1] EDSR). A plain backbone checkpoint (any family
    with an SR ``branch_state``: RRDB/EDSR/SRResNet) fills the SR branch of an SPSR generator
    with that backbone (its image conv is not used). For a generator with the desubpixel head
    (the U-Net follow-up) the first convs of a checkpoint without it are spread over the
    ``scale²`` sub-pixel positions (see :func:`spread_to_desubpixel_head`). An SPSR-G with an
    RRDB SR branch initialises an RRDBNet with that branch
    (:func:`spsr.archs.families.rrdb.state_from_spsr_branch`: the ablations' "w/o GB" rows).

    Args:
        model: the freshly built generator.
        spec: its architecture.
        source: weights file, run folder or built-in name.
        warnings: if given, what detection had to guess is appended here (one line each).

    Returns:
        The keys of ``model`` that were set.
    """
    path = resolve_weights(source)
    checked = inspect_checkpoint(path, spec.scale)
    state, src_spec = checked.state, checked.spec
    if warnings is not None:
        warnings.extend(checked.warnings)
    if src_spec.scale != spec.scale:
        raise CheckpointError(f"{path}: init weights are x{src_spec.scale}, the model is x{spec.scale}")
    spread = bool(spec.extra.get("desubpixel_head")) and not src_spec.extra.get("desubpixel_head")
    if src_spec.arch == spec.arch and (spec.arch != "spsr" or src_spec.backbone == spec.backbone):
        adapt = family(spec.arch).adapt_init
        if adapt is not None:
            state = adapt(state, src_spec, spec)
        if spread:
            state = spread_to_desubpixel_head(state, model.state_dict(), spec.scale)
        _load_strict(model, state, str(path))
        return list(state)
    branch_state = family(src_spec.arch).branch_state
    if spec.arch == "spsr" and src_spec.arch == spec.backbone and branch_state is not None:
        branch = branch_state(state, src_spec, spec)
        own = model.state_dict()
        if spread:
            branch = spread_to_desubpixel_head(branch, own, spec.scale)
        bad = [k for k in branch if k not in own or own[k].shape != branch[k].shape]
        if bad:
            raise CheckpointError(
                f"{path}: {src_spec.describe()} does not fit the SR branch of {spec.describe()} "
                f"({len(bad)} keys differ, e.g. {bad[0]})"
            )
        missing_branch = [k for k in own if k.startswith("model.") and k not in branch]
        if missing_branch:
            raise CheckpointError(f"{path}: SR-branch keys missing from the init, e.g. {missing_branch[0]}")
        # For RRDB, model.8 *is* HR_conv0_new (one shared module), so both keys are set here.
        model.load_state_dict(branch, strict=False)
        return list(branch)
    if spec.arch == "rrdb" and src_spec.arch == "spsr" and src_spec.backbone == "rrdb":
        # A "w/o GB" row started from an SPSR-G model: its SR branch alone (#28 item 4).
        from spsr.archs.families.rrdb import state_from_spsr_branch

        try:
            rrdb = state_from_spsr_branch(state, src_spec, spec)
        except ValueError as exc:
            raise CheckpointError(
                f"{path}: cannot initialise {spec.describe()} from the SR branch of "
                f"{src_spec.describe()}: {exc}"
            ) from None
        if spread:
            rrdb = spread_to_desubpixel_head(rrdb, model.state_dict(), spec.scale)
        _load_strict(model, rrdb, str(path))
        return list(rrdb)
    raise CheckpointError(f"{path}: cannot initialise {spec.describe()} from {src_spec.describe()}")
