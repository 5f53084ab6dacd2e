"""RRDBNet (ESRGAN, BasicSR, Real-ESRGAN): three key layouts, ×1/×2 pixel-unshuffle included.

Layouts (all renamed to the old ESRGAN ``model.N`` keys that :class:`~spsr.archs.rrdb_net.RRDBNet`
uses):

* old ESRGAN / SPSR: ``model.0``, ``model.1.sub.N.RDBr.convc.0``, ``model.1.sub.{nb}``, one
  ``model.3`` (×2/×3), ``model.3``/``model.6`` (×4) or ``model.3/6/9`` (×8) up-convs, then the
  HR conv and the last conv;
* the ESRGAN repository: ``conv_first``, ``RRDB_trunk.N.RDBr.convc``, ``trunk_conv``,
  ``upconv1``/``upconv2``, ``HRconv``, ``conv_last`` (×4);
* BasicSR / Real-ESRGAN: ``conv_first``, ``body.N.rdbr.convc``, ``conv_body``,
  ``conv_up1``/``conv_up2``, ``conv_hr``, ``conv_last``; ×4, or ×2 / ×1 with a pixel-unshuffle
  input (``conv_first`` sees 4× or 16× the image channels: Real-ESRGAN ``x2plus``).
"""

from __future__ import annotations

from torch import nn

from spsr.archs.blocks import conv_block
from spsr.archs.registry import (
    Detected,
    Family,
    Layout,
    StateDict,
    conv_shape,
    count_blocks,
    indices,
    rename,
    scale_from_nearest_upconvs,
)
from spsr.archs.rrdb_net import RRDBNet, RRDBTrunk
from spsr.archs.spec import ArchSpec

_NEW_LAYOUTS = {
    # layout name: (block prefix, RDB name, trunk conv, up-convs, HR conv, first RDB key)
    "ESRGAN repository RRDBNet": ("RRDB_trunk", "RDB", "trunk_conv", ("upconv1", "upconv2"), "HRconv",
                                  "RRDB_trunk.0.RDB1.conv1.weight"),
    "BasicSR RRDBNet": ("body", "rdb", "conv_body", ("conv_up1", "conv_up2"), "conv_hr",
                        "body.0.rdb1.conv1.weight"),
}


def _to_old_layout(state: StateDict, name: str) -> StateDict:
    block, rdb, trunk, ups, hr, _ = _NEW_LAYOUTS[name]
    nb = count_blocks(state, rf"{block}\.(\d+)\.")
    has_up2 = f"{ups[1]}.weight" in state
    hr_idx, last_idx = (8, 10) if has_up2 else (5, 7)
    rules = [
        (rf"{block}\.(\d+)\.{rdb}(\d)\.conv(\d)\.(weight|bias)", r"model.1.sub.\1.RDB\2.conv\3.0.\4"),
        (r"conv_first\.(weight|bias)", r"model.0.\1"),
        (rf"{trunk}\.(weight|bias)", rf"model.1.sub.{nb}.\1"),
        (rf"{ups[0]}\.(weight|bias)", r"model.3.\1"),
        (rf"{ups[1]}\.(weight|bias)", r"model.6.\1"),
        (rf"{hr}\.(weight|bias)", rf"model.{hr_idx}.\1"),
        (r"conv_last\.(weight|bias)", rf"model.{last_idx}.\1"),
    ]
    return rename(state, rules, name)


def detect(state: StateDict, model_scale: int | None) -> Detected | None:
    if "model.1.sub.0.RDB1.conv1.0.weight" in state and "model.0.weight" in state:
        layout, old = "ESRGAN (old layout) RRDBNet", state
    else:
        for name, (*_, first) in _NEW_LAYOUTS.items():
            if first in state and "conv_first.weight" in state:
                layout, old = name, _to_old_layout(state, name)
                break
        else:
            return None
    idx = indices(old, r"model\.(\d+)\.weight")
    n_up = len(idx) - 3
    nf, in_conv = conv_shape(old, "model.0.weight")
    out_nc = conv_shape(old, f"model.{idx[-1]}.weight")[0]
    gc = conv_shape(old, "model.1.sub.0.RDB1.conv1.0.weight")[0]
    nb = count_blocks(old, r"model\.1\.sub\.(\d+)\.RDB1\.")
    extra: dict[str, object] = {}
    guesses: tuple[str, ...] = ()
    if n_up == 2 and in_conv in (4 * out_nc, 16 * out_nc):
        scale, in_nc = (2 if in_conv == 4 * out_nc else 1), out_nc
        extra["pixel_unshuffle"] = True
        layout += f" (pixel-unshuffle x{scale})"
    else:
        scale, guesses = scale_from_nearest_upconvs(n_up, model_scale, layout)
        in_nc = in_conv
    spec = ArchSpec("rrdb", scale, in_nc, out_nc, nf, nb, gc, extra=extra)
    return Detected(spec, dict(old), layout, guesses)


def build(spec: ArchSpec) -> nn.Module:
    return RRDBNet(spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.gc, spec.scale,
                   pixel_unshuffle=bool(spec.extra.get("pixel_unshuffle", False)),
                   desubpixel_head=bool(spec.extra.get("desubpixel_head", False)))


def check(spec: ArchSpec) -> None:
    if spec.extra.get("desubpixel_head"):
        if spec.extra.get("pixel_unshuffle"):
            raise ValueError("an RRDBNet takes pixel_unshuffle or desubpixel_head, not both")
        if spec.scale == 1:
            raise ValueError("an RRDBNet x1 needs the pixel-unshuffle input (extra.pixel_unshuffle)")
    elif spec.extra.get("pixel_unshuffle"):
        if spec.scale not in (1, 2):
            raise ValueError(f"a pixel-unshuffle RRDBNet is x1 or x2, not x{spec.scale}")
    elif spec.scale == 1:
        raise ValueError("an RRDBNet x1 needs the pixel-unshuffle input (extra.pixel_unshuffle)")


def branch(in_nc: int, out_nc: int, nf: int, nb: int, gc: int, scale: int,
           res_scale: float) -> tuple[nn.Module, nn.Module | None]:
    hr_conv = conv_block(nf, nf, act=True)
    return RRDBTrunk(in_nc, nf, nb, gc, scale, hr_conv), hr_conv


def branch_state(state: StateDict, spec: ArchSpec, target: ArchSpec) -> StateDict:
    """Everything but the last (image) conv; the keys are already the SR branch's ``model.N``."""
    last = indices(state, r"model\.(\d+)\.weight")[-1]
    return {k: v for k, v in state.items() if not k.startswith(f"model.{last}.")}


def state_from_spsr_branch(state: StateDict, spec: ArchSpec, target: ArchSpec) -> StateDict:
    """An RRDBNet's state from an SPSR-G generator with an RRDB SR branch (the inverse of
    :func:`branch_state`): the "w/o GB" rows of the papers' ablations (TPAMI 2021 Table 2, the
    U-Net follow-up's Table 2) are the SR branch alone, so an SPSR-G initialisation hands them
    that branch.

    SPSR-G's SR branch (``model.*``: first conv, RRDB trunk, up-convs, HR conv + LReLU, the HR
    conv shared as ``HR_conv0_new``) has exactly the keys and shapes of an RRDBNet's
    ``model.0`` … HR conv, so they are copied as they are: the RRDBNet's features before its last
    conv are the SR branch's output features. The RRDBNet's last conv (features → image) has no
    counterpart in the branch, whose features reach the image only through the fusion with the
    gradient branch; it takes SPSR-G's own features-to-image conv, the fusion's last conv
    ``f_HR_conv1`` (same shape), as its starting point. Everything else of SPSR-G (gradient
    branch, fusion, ``HR_conv1_new``) is dropped.

    Args:
        state: the SPSR-G state dict.
        spec: its architecture (``arch = spsr``, ``backbone = rrdb``).
        target: the RRDBNet's architecture (same scale, channels, nf, nb, gc; the desubpixel
            head if the SPSR-G has it; a target with the head and a source without it gets the
            source's first conv, which the caller spreads over the head's input channels).

    Raises:
        ValueError: when the two do not fit (another backbone, sizes, head, or an SPSR-G with
            ``image_skip``, whose SR path adds a bicubic skip an RRDBNet does not have).
    """
    if spec.arch != "spsr" or spec.backbone != "rrdb":
        raise ValueError(f"not an SPSR-G with an RRDB SR branch ({spec.arch}, {spec.backbone})")
    if spec.extra.get("image_skip"):
        raise ValueError("an SPSR-G with image_skip (a bicubic skip) has no RRDBNet counterpart")
    for name in ("scale", "in_nc", "out_nc", "nf", "nb", "gc"):
        if getattr(spec, name) != getattr(target, name):
            raise ValueError(f"{name} differs: {getattr(spec, name)} vs {getattr(target, name)}")
    if spec.extra.get("desubpixel_head") and not target.extra.get("desubpixel_head"):
        raise ValueError("the SPSR-G has the desubpixel head and the RRDBNet not")
    out = {k: v for k, v in state.items() if k.startswith("model.")}
    last = indices(out, r"model\.(\d+)\.weight")[-1] + 2  # after the HR conv and its LReLU
    out[f"model.{last}.weight"] = state["f_HR_conv1.0.weight"]
    out[f"model.{last}.bias"] = state["f_HR_conv1.0.bias"]
    return out


def describe_extra(spec: ArchSpec) -> str:
    gc = f", gc {spec.gc}" if spec.gc != 32 else ""
    head = ", desubpixel head" if spec.extra.get("desubpixel_head") else ""
    return gc + (", pixel-unshuffle input" if spec.extra.get("pixel_unshuffle") else "") + head


FAMILY = Family(
    name="rrdb",
    title="RRDBNet (ESRGAN)",
    scales=(1, 2, 3, 4, 8),
    default_nb=23,
    build=build,
    detect=detect,
    extra={"pixel_unshuffle": bool, "desubpixel_head": bool},
    check=check,
    branch=branch,
    branch_state=branch_state,
    describe_extra=describe_extra,
    growth_channels=True,
    from_wrapper_branch=state_from_spsr_branch,
    takes_upsampled_lr=lambda spec: bool(spec.extra.get("desubpixel_head", False)),
    layouts=(
        Layout("ESRGAN / SPSR (old)", "RRDBNet", "2*, 3*, 4, 8",
               "model.0, model.1.sub.N.RDBr.convc.0, model.3[, model.6], HR conv, last conv"),
        Layout("ESRGAN repository", "RRDBNet", "4",
               "conv_first, RRDB_trunk.N.RDBr.convc, trunk_conv, upconv1/2, HRconv, conv_last"),
        Layout("BasicSR / Real-ESRGAN", "RRDBNet", "1, 2 (pixel-unshuffle), 4",
               "conv_first, body.N.rdbr.convc, conv_body, conv_up1/2, conv_hr, conv_last"),
    ),
)
