"""Reading and writing generator weights; architecture detection from keys and shapes.

We write ``.safetensors`` with the ``ArchSpec`` and provenance in the metadata. We read those,
the official SPSR ``.pth``, ESRGAN checkpoints in all three key layouts (old ``model.N``, the
ESRGAN repo's ``RRDB_trunk``, BasicSR's ``body.N.rdb1``), and wrapped dicts (``params_ema`` over
``params``, ``state_dict``, ``model``; ``module.`` prefixes). Foreign ``.pth`` files are read with
``torch.load(weights_only=True)`` only: never full unpickling.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import spsr
from spsr.archs.spec import ArchSpec, build_model
from spsr.atomic import atomic_path
from spsr.errors import CheckpointError

FORMAT = "spsr-weights"
FORMAT_VERSION = "1"
RUN_WEIGHTS = "model.safetensors"
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "weights"
#: The named built-in models (``spsr/tools/train_default_models.sh`` trains and installs them).
BUILTIN_WEIGHTS = {
    "psnr": "spsr_psnr_x4.safetensors",
    "perceptual": "spsr_perceptual_x4.safetensors",
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


# --------------------------------------------------------------------------- reading


def resolve_weights(source: str | os.PathLike[str]) -> Path:
    """A weights file from a file path, a run folder, or a built-in name."""
    text = str(source)
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
        candidate = path / RUN_WEIGHTS
        if not candidate.is_file():
            raise CheckpointError(f"{path}: run folder has no {RUN_WEIGHTS} (has training saved a checkpoint yet?)")
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
                state = {k: fh.get_tensor(k) for k in fh.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable .safetensors file (truncated or corrupt: {exc})") from None
        return state, metadata
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated, corrupt or not a weights file: {msg})") from None
    except Exception as exc:  # pickle.UnpicklingError for unsafe globals, among others
        msg = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: refused or unreadable checkpoint ({msg}); only plain tensors are loaded") from None
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


# --------------------------------------------------------------------------- layouts


def _count(state: StateDict, pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := rx.match(k))}
    return max(found) + 1 if found else 0


def to_old_esrgan_layout(state: StateDict) -> StateDict:
    """Rename an ESRGAN-repo (``RRDB_trunk``) or BasicSR (``body.N.rdb1``) state dict to ``model.N`` keys."""
    if "conv_first.weight" not in state:
        return state
    if "RRDB_trunk.0.RDB1.conv1.weight" in state:
        block, rdb, trunk, ups, hr = "RRDB_trunk", "RDB", "trunk_conv", ("upconv1", "upconv2"), "HRconv"
    elif "body.0.rdb1.conv1.weight" in state:
        block, rdb, trunk, ups, hr = "body", "rdb", "conv_body", ("conv_up1", "conv_up2"), "conv_hr"
    else:
        return state
    in_ch = state["conv_first.weight"].shape[1]
    out_ch = state["conv_last.weight"].shape[0]
    if in_ch != out_ch:
        raise CheckpointError(
            f"RRDB checkpoint with {in_ch} input channels for {out_ch} outputs (pixel-unshuffle "
            "Real-ESRGAN x1/x2 layout) is not supported"
        )
    nb = _count(state, rf"{block}\.(\d+)\.")
    out: StateDict = {}
    rx = re.compile(rf"{block}\.(\d+)\.{rdb}(\d)\.conv(\d)\.(weight|bias)")
    for key, value in state.items():
        if m := rx.match(key):
            n, r, c, kind = m.groups()
            out[f"model.1.sub.{n}.RDB{r}.conv{c}.0.{kind}"] = value
    names = {"conv_first": "model.0", trunk: f"model.1.sub.{nb}", ups[0]: "model.3", hr: None,
             "conv_last": None}
    has_up2 = f"{ups[1]}.weight" in state
    if has_up2:
        names[ups[1]] = "model.6"
    names[hr] = "model.8" if has_up2 else "model.5"
    names["conv_last"] = "model.10" if has_up2 else "model.7"
    for src, dst in names.items():
        for kind in ("weight", "bias"):
            if f"{src}.{kind}" not in state:
                raise CheckpointError(f"RRDB checkpoint is missing {src}.{kind}")
            out[f"{dst}.{kind}"] = state[f"{src}.{kind}"]
    if len(out) != len(state):
        extra = sorted(set(state) - {k for k in state if rx.match(k)} - {f"{n}.{k}" for n in names for k in ("weight", "bias")})
        raise CheckpointError(f"RRDB checkpoint has keys this layout does not know: {', '.join(extra[:5])}")
    return out


def _scale_from_upconvs(n_up: int, expected_scale: int | None) -> int:
    if n_up == 1:
        return 3 if expected_scale == 3 else 2
    return {2: 4, 3: 8}.get(n_up, 0)


def detect_spec(state: StateDict, expected_scale: int | None = None) -> ArchSpec:
    """Infer the architecture and hyperparameters of a generator state dict from keys and shapes."""
    if "f_HR_conv1.0.weight" in state:
        nf = state["f_HR_conv1.0.weight"].shape[1]
        out_nc = state["f_HR_conv1.0.weight"].shape[0]
        in_nc = state["b_fea_conv.0.weight"].shape[1]
        gc = state["f_block.RDB1.conv1.0.weight"].shape[0]
        n_taps = _count(state, r"b_block_(\d+)\.") - 1
        convs = sorted({int(m.group(1)) for k in state if (m := re.match(r"b_module\.(\d+)\.weight", k))})
        scale = _scale_from_upconvs(len(convs) - 2, expected_scale)
        if "model.1.sub.0.RDB1.conv1.0.weight" in state:
            backbone, nb = "rrdb", _count(state, r"model\.1\.sub\.(\d+)\.RDB1")
        elif "model.head.0.weight" in state:
            backbone, nb = "edsr", _count(state, r"model\.body\.(\d+)\.body")
        elif "model.conv_first.weight" in state:
            backbone, nb = "srresnet", _count(state, r"model\.body\.(\d+)\.conv1")
        else:
            raise CheckpointError("SPSR checkpoint with an unknown SR-branch layout")
        from spsr.archs.blocks import tap_points

        return ArchSpec("spsr", scale, in_nc, out_nc, nf, nb, gc, backbone, tap_points(nb, n_taps))
    old = to_old_esrgan_layout(state)
    if "model.1.sub.0.RDB1.conv1.0.weight" in old:
        idx = sorted({int(m.group(1)) for k in old if (m := re.match(r"model\.(\d+)\.weight", k))})
        scale = _scale_from_upconvs(len(idx) - 3, expected_scale)
        nf, in_nc = old["model.0.weight"].shape[:2]
        out_nc = old[f"model.{idx[-1]}.weight"].shape[0]
        gc = old["model.1.sub.0.RDB1.conv1.0.weight"].shape[0]
        nb = _count(old, r"model\.1\.sub\.(\d+)\.RDB1")
        return ArchSpec("rrdb", scale, in_nc, out_nc, nf, nb, gc)
    if "head.0.weight" in state and "tail.0.0.weight" in state:
        nf, in_nc = state["head.0.weight"].shape[:2]
        ups = _count(state, r"tail\.0\.(\d+)\.weight")
        first_up = state["tail.0.0.weight"].shape[0] // nf
        scale = 3 if first_up == 9 else {1: 2, 3: 4, 5: 8}.get(ups, 0)
        nb = _count(state, r"body\.(\d+)\.body")
        out_nc = state["tail.1.weight"].shape[0]
        return ArchSpec("edsr", scale, in_nc, out_nc, nf, nb)
    if "conv_first.weight" in state and "conv_hr.weight" in state and "body.0.conv1.weight" in state:
        nf, in_nc = state["conv_first.weight"].shape[:2]
        first_up = state["upsample.0.weight"].shape[0] // nf
        ups = _count(state, r"upsample\.(\d+)\.weight")
        scale = 3 if first_up == 9 else {1: 2, 4: 4}.get(ups, 0)
        return ArchSpec("srresnet", scale, in_nc, state["conv_last.weight"].shape[0], nf,
                        _count(state, r"body\.(\d+)\.conv1"))
    sample = ", ".join(list(state)[:4])
    raise CheckpointError(f"unrecognised checkpoint layout (first keys: {sample})")


def _load_strict(model: nn.Module, state: StateDict, what: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if mismatched:
        problems.append(f"{len(mismatched)} with other shapes (e.g. {mismatched[0]})")
    if problems:
        raise CheckpointError(f"{what} does not fit the model: keys " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def load_model(
    source: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    expected_scale: int | None = None,
) -> LoadedModel:
    """Build and load a generator from a weights file, a run folder or a built-in name.

    Args:
        source: ``.safetensors`` / ``.pth`` path, run folder, or ``default`` / ``psnr`` / ``perceptual``.
        device: where to put the model.
        expected_scale: fail clearly if the weights are for another scale.

    Returns:
        The model in eval mode with its spec and metadata.
    """
    path = resolve_weights(source)
    state, metadata = read_checkpoint(path)
    if metadata.get("format") == FORMAT:
        try:
            spec = ArchSpec.from_dict(json.loads(metadata["arch"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: broken architecture metadata ({exc})") from None
    else:
        try:
            spec = detect_spec(state, expected_scale)
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        if spec.arch == "rrdb":
            state = to_old_esrgan_layout(state)
    if expected_scale is not None and spec.scale != expected_scale:
        raise CheckpointError(f"{path}: weights are for x{spec.scale}, but x{expected_scale} was asked for")
    model = build_model(spec)
    _load_strict(model, state, str(path))
    model.eval().requires_grad_(False).to(device)
    parsed = {k: _maybe_json(v) for k, v in metadata.items()}
    return LoadedModel(model, spec, parsed, path)


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
    module = model.module if hasattr(model, "module") else model
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


def load_init(model: nn.Module, spec: ArchSpec, source: str | os.PathLike[str]) -> list[str]:
    """Initialise ``model`` from any checkpoint this module reads.

    The same architecture loads strictly. A plain backbone (RRDB/EDSR/SRResNet) checkpoint fills
    the SR branch of an SPSR generator with that backbone (its image conv is not used). For a
    generator with the desubpixel head (the U-Net follow-up) the first convs of a checkpoint without it are
    spread over the ``scale²`` sub-pixel positions (see :func:`spread_to_desubpixel_head`).

    Returns:
        The keys of ``model`` that were set.
    """
    path = resolve_weights(source)
    state, metadata = read_checkpoint(path)
    if metadata.get("format") == FORMAT:
        src_spec = ArchSpec.from_dict(json.loads(metadata["arch"]))
    else:
        src_spec = detect_spec(state, spec.scale)
        if src_spec.arch == "rrdb":
            state = to_old_esrgan_layout(state)
    if src_spec.scale != spec.scale:
        raise CheckpointError(f"{path}: init weights are x{src_spec.scale}, the model is x{spec.scale}")
    spread = bool(spec.extra.get("desubpixel_head")) and not src_spec.extra.get("desubpixel_head")
    if src_spec.arch == spec.arch and (spec.arch != "spsr" or src_spec.backbone == spec.backbone):
        if spread:
            state = spread_to_desubpixel_head(state, model.state_dict(), spec.scale)
        _load_strict(model, state, str(path))
        return list(state)
    if spec.arch == "spsr" and src_spec.arch == spec.backbone:
        dropped = {"rrdb": ("model.10.",), "edsr": ("tail.1.",), "srresnet": ("conv_last.",)}[spec.backbone]
        if spec.backbone == "rrdb":
            branch = {k: v for k, v in state.items() if not k.startswith(dropped)}
        else:
            branch = {f"model.{k}": v for k, v in state.items() if not k.startswith(dropped)}
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
    raise CheckpointError(f"{path}: cannot initialise {spec.describe()} from {src_spec.describe()}")
