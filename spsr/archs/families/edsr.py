"""EDSR: spsr's own layout, official EDSR-PyTorch (mean shift, ``rgb_range``) and BasicSR's EDSR.

* spsr / EDSR-PyTorch: ``head.0``, ``body.N.body.0/2``, ``body.{nb}``, ``tail.0.K`` (conv,
  PixelShuffle pairs), ``tail.1``; EDSR-PyTorch adds ``sub_mean`` / ``add_mean`` (1×1 MeanShift
  convs whose bias is ``∓rgb_range·mean/std``, so ``rgb_range`` is read from it) and works in
  0..255.
* BasicSR: ``conv_first``, ``body.N.conv1/2``, ``conv_after_body``, ``upsample.K``,
  ``conv_last``; its mean is a plain attribute (not saved unless a fork registers ``mean``)
  and its ``img_range`` is not saved: BasicSR's EDSR option files use 255 and the DIV2K mean.

``res_scale`` is never saved: 0.1 is assumed for the 32-block × 256-feature model (as both
projects train it), 1.0 otherwise, and reported as a guess.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from spsr.archs.edsr_net import EDSR
from spsr.archs.registry import (
    Detected,
    Family,
    Layout,
    StateDict,
    conv_shape,
    count_blocks,
    indices,
    rename,
)
from spsr.archs.spec import ArchSpec
from spsr.errors import CheckpointError

#: DIV2K's RGB mean, the value both EDSR-PyTorch and BasicSR shift by.
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def _res_scale(nf: int, nb: int) -> tuple[float, str]:
    if (nf, nb) == (256, 32):
        return 0.1, "res_scale is not stored in EDSR checkpoints: assumed 0.1 (the 32x256 model's)"
    return 1.0, "res_scale is not stored in EDSR checkpoints: assumed 1.0 (the baseline's)"


def _rgb_range(state: StateDict) -> float:
    """``rgb_range`` from the ``sub_mean`` MeanShift: weight ``I/std``, bias ``-range·mean/std``."""
    w, b = state["sub_mean.weight"], state["sub_mean.bias"]
    if w.dim() != 4 or w.shape[:2] != (3, 3) or b.shape != (3,):
        raise CheckpointError(f"sub_mean has shape {tuple(w.shape)}, not EDSR-PyTorch's 3x3x1x1 MeanShift")
    std = 1.0 / torch.diagonal(w[:, :, 0, 0].double())
    est = float((-b.double() * std / torch.tensor(DIV2K_MEAN, dtype=torch.float64)).mean())
    for nice in (255.0, 1.0):
        if abs(est - nice) <= 1e-3 * nice:
            return nice
    if not est > 0:
        raise CheckpointError(f"sub_mean's bias gives rgb_range {est:g}: not an EDSR-PyTorch MeanShift")
    return est


def detect(state: StateDict, model_scale: int | None) -> Detected | None:
    guesses: list[str] = []
    extra: dict[str, object] = {}
    if "head.0.weight" in state and "tail.0.0.weight" in state:
        canon = dict(state)
        if "sub_mean.weight" in state or "add_mean.weight" in state:
            layout = "EDSR-PyTorch EDSR"
            rgb_range = _rgb_range(state)
            extra.update(mean_shift=True, rgb_range=rgb_range)
            if "add_mean.weight" not in state or "add_mean.bias" not in state:
                raise CheckpointError("EDSR-PyTorch checkpoint with sub_mean but no add_mean (partial file)")
        else:
            layout = "EDSR (no mean shift)"
            guesses.append("no sub_mean/add_mean keys: read as spsr's EDSR in [0, 1] (an EDSR-PyTorch "
                           "file stripped of its MeanShift would give wrong colours)")
    elif "conv_first.weight" in state and "conv_after_body.weight" in state:
        layout = "BasicSR EDSR"
        nb = count_blocks(state, r"body\.(\d+)\.conv1\.")
        canon = rename(state, [
            (r"conv_first\.(weight|bias)", r"head.0.\1"),
            (r"body\.(\d+)\.conv1\.(weight|bias)", r"body.\1.body.0.\2"),
            (r"body\.(\d+)\.conv2\.(weight|bias)", r"body.\1.body.2.\2"),
            (r"conv_after_body\.(weight|bias)", rf"body.{nb}.\1"),
            (r"upsample\.(\d+)\.(weight|bias)", r"tail.0.\1.\2"),
            (r"conv_last\.(weight|bias)", r"tail.1.\1"),
            (r"mean", "mean"),
        ], layout)
        mean = canon.pop("mean", None)
        if mean is None:
            mean = torch.tensor(DIV2K_MEAN)
            guesses.append("BasicSR EDSR saves neither its mean nor img_range: assumed the DIV2K mean "
                           "and img_range 255 (its EDSR option files)")
        else:
            guesses.append("BasicSR EDSR does not save img_range: assumed 255 (its EDSR option files)")
        mean = mean.reshape(-1).float()
        n = mean.numel()
        eye = torch.eye(n).reshape(n, n, 1, 1)
        canon.update({"sub_mean.weight": eye, "sub_mean.bias": -255.0 * mean,
                      "add_mean.weight": eye.clone(), "add_mean.bias": 255.0 * mean})
        extra.update(mean_shift=True, rgb_range=255.0)
    else:
        return None
    nf, in_nc = conv_shape(canon, "head.0.weight")
    nb = count_blocks(canon, r"body\.(\d+)\.body\.")
    ups = indices(canon, r"tail\.0\.(\d+)\.weight")
    factor = conv_shape(canon, "tail.0.0.weight")[0] // nf
    scale = 3 if factor == 9 else {1: 2, 2: 4, 3: 8}.get(len(ups), 0) if factor == 4 else 0
    if scale == 0:
        raise CheckpointError(
            f"{layout} with {len(ups)} upsampling convs of {factor}x{nf} channels: no supported scale"
        )
    res_scale, note = _res_scale(nf, nb)
    guesses.append(note)
    extra["res_scale"] = res_scale
    out_nc = conv_shape(canon, "tail.1.weight")[0]
    return Detected(ArchSpec("edsr", scale, in_nc, out_nc, nf, nb, extra=extra), canon, layout, tuple(guesses))


def build(spec: ArchSpec) -> nn.Module:
    e = spec.extra
    return EDSR(spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.scale, float(e.get("res_scale", 1.0)),
                mean_shift=bool(e.get("mean_shift", False)), rgb_range=float(e.get("rgb_range", 1.0)))


def _bias_keys(state: StateDict) -> list[str]:
    return [k for k in state if k.endswith(".bias") and not k.startswith(("sub_mean.", "add_mean."))]


def to_unit_range(state: StateDict, spec: ArchSpec) -> StateDict:
    """An EDSR with a mean shift and/or ``rgb_range`` folded into a plain [0, 1] EDSR's weights.

    Every conv is linear and ReLU positively homogeneous, so dividing all biases by ``rgb_range``
    gives the network in [0, 1] exactly. ``add_mean`` (a 1×1 conv after the last conv) folds
    exactly into ``tail.1``; ``sub_mean`` folds into ``head.0``, exactly except on the 1-pixel
    image border, where the zero padding then pads the unshifted image.
    """
    r = float(spec.extra.get("rgb_range", 1.0))
    out = {k: v.clone() for k, v in state.items() if not k.startswith(("sub_mean.", "add_mean."))}
    for key in _bias_keys(out):
        out[key] = out[key] / r
    if spec.extra.get("mean_shift"):
        s, d = state["sub_mean.weight"][:, :, 0, 0], state["sub_mean.bias"] / r
        w = out["head.0.weight"]
        out["head.0.weight"] = torch.einsum("ocij,cn->onij", w, s)
        out["head.0.bias"] = out["head.0.bias"] + torch.einsum("ocij,c->o", w, d)
        a, c = state["add_mean.weight"][:, :, 0, 0], state["add_mean.bias"] / r
        out["tail.1.weight"] = torch.einsum("ok,kcij->ocij", a, out["tail.1.weight"])
        out["tail.1.bias"] = a @ out["tail.1.bias"] + c
    return out


def _refit(state: StateDict, src: ArchSpec, res_scale: float, mean_shift: bool, rgb_range: float,
           in_nc: int, out_nc: int) -> StateDict:
    """``state`` of the EDSR ``src`` for an EDSR with other ``res_scale`` / mean shift / range.

    Both with a mean shift: every bias scales with the ratio of the ranges (exact). Otherwise via
    the [0, 1] form (:func:`to_unit_range`, exact but for the image border when a mean shift is
    folded away), a target mean shift starting as the identity and a target ``rgb_range``
    multiplying every bias back (exact). A residual ``x + s·body(x)`` whose body ends in a conv
    takes another ``s`` exactly by scaling that conv.
    """
    if mean_shift and src.extra.get("mean_shift"):
        # Same mean shift: the whole network, MeanShift biases included, scales with the range.
        ratio = rgb_range / float(src.extra.get("rgb_range", 1.0))
        out = {k: v * ratio if k.endswith(".bias") else v.clone() for k, v in state.items()}
    else:
        out = to_unit_range(state, src)
        for key in _bias_keys(out):
            out[key] = out[key] * rgb_range
        if mean_shift:
            for name, n in (("sub_mean", in_nc), ("add_mean", out_nc)):
                out[f"{name}.weight"] = torch.eye(n).reshape(n, n, 1, 1)
                out[f"{name}.bias"] = torch.zeros(n)
    ratio = float(src.extra.get("res_scale", 1.0)) / res_scale
    if ratio != 1.0:
        for key in [k for k in out if re.fullmatch(r"body\.\d+\.body\.2\.(weight|bias)", k)]:
            out[key] = out[key] * ratio
    return out


def adapt_init(state: StateDict, src: ArchSpec, target: ArchSpec) -> StateDict:
    """An EDSR checkpoint for an EDSR whose ``extra`` differs (see :func:`_refit`)."""
    keys = (("res_scale", 1.0), ("mean_shift", False), ("rgb_range", 1.0))
    if all(src.extra.get(k, d) == target.extra.get(k, d) for k, d in keys):
        return state
    e = target.extra
    return _refit(state, src, float(e.get("res_scale", 1.0)), bool(e.get("mean_shift", False)),
                  float(e.get("rgb_range", 1.0)), target.in_nc, target.out_nc)


def branch(in_nc: int, out_nc: int, nf: int, nb: int, gc: int, scale: int,
           res_scale: float) -> tuple[nn.Module, nn.Module | None]:
    return EDSR(in_nc, out_nc, nf, nb, scale, res_scale, feature_only=True), None


def branch_state(state: StateDict, spec: ArchSpec, target: ArchSpec) -> StateDict:
    """Head, body and upsampler in [0, 1] (mean shift folded, ``res_scale`` refitted to the SPSR
    generator's), under the SR branch's ``model.``."""
    res_scale = float(target.extra.get("res_scale", 1.0))
    plain = _refit(state, spec, res_scale, False, 1.0, spec.in_nc, spec.out_nc)
    return {f"model.{k}": v for k, v in plain.items() if not k.startswith("tail.1.")}


def describe_extra(spec: ArchSpec) -> str:
    e = spec.extra
    parts = [f"res_scale {e['res_scale']:g}"] if e.get("res_scale", 1.0) != 1.0 else []
    if e.get("mean_shift"):
        parts.append(f"mean shift, rgb_range {e.get('rgb_range', 1.0):g}")
    return "".join(f", {p}" for p in parts)


FAMILY = Family(
    name="edsr",
    title="EDSR",
    scales=(2, 3, 4, 8),
    default_nb=16,
    build=build,
    detect=detect,
    extra={"res_scale": (int, float), "mean_shift": bool, "rgb_range": (int, float)},
    branch=branch,
    branch_state=branch_state,
    adapt_init=adapt_init,
    describe_extra=describe_extra,
    default_init="pytorch",  # EDSR-PyTorch does not initialise its layers
    layouts=(
        Layout("EDSR-PyTorch (official)", "EDSR baseline / large", "2, 3, 4",
               "sub_mean, head.0, body.N.body.0/2, body.{nb}, tail.0.K, tail.1, add_mean"),
        Layout("BasicSR", "EDSR", "2, 3, 4",
               "conv_first, body.N.conv1/2, conv_after_body, upsample.K, conv_last"),
    ),
)
