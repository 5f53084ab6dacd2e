"""SPSR-G, the generator of the CVPR 2020 / TPAMI 2021 papers, in the official ``spsr.pth`` keys.

An SR branch (``model.*``: any family with a ``branch``, RRDB in the official file), the
gradient branch (``b_fea_conv``, ``b_block_i``, ``b_concat_i``, ``b_LR_conv``, ``b_module``,
``conv_w``) and the fusion (``f_block``, ``f_concat``, ``f_HR_conv0/1``).
"""

from __future__ import annotations

from torch import nn

from spsr.archs.blocks import tap_points
from spsr.archs.registry import (
    Detected,
    Family,
    Layout,
    StateDict,
    conv_shape,
    count_blocks,
    indices,
    scale_from_nearest_upconvs,
)
from spsr.archs.spec import ArchSpec
from spsr.archs.spsr_net import SPSRNet
from spsr.errors import CheckpointError

# The SR branch's first key and block pattern for each backbone layout under ``model.``.
_BRANCHES = {
    "rrdb": ("model.1.sub.0.RDB1.conv1.0.weight", "model.0.weight", r"model\.1\.sub\.(\d+)\.RDB1\."),
    "edsr": ("model.head.0.weight", "model.head.0.weight", r"model\.body\.(\d+)\.body\."),
    "srresnet": ("model.conv_first.weight", "model.conv_first.weight", r"model\.body\.(\d+)\.conv1\."),
}


def detect(state: StateDict, model_scale: int | None) -> Detected | None:
    if "f_HR_conv1.0.weight" not in state:
        return None
    out_nc, nf = conv_shape(state, "f_HR_conv1.0.weight")
    head_nc = conv_shape(state, "b_fea_conv.0.weight")[1]
    extra: dict[str, object] = {}
    gc_key = "f_block.RDB1.conv1.0.weight"
    if not any(k.startswith("f_block.") for k in state):  # the cheap fusion: no RRDB at HR resolution
        extra["fusion_block"] = False
        gc_key = "b_block_1.RDB1.conv1.0.weight"
    elif gc_key not in state:  # a damaged fusion block: loading names what is missing
        gc_key = "b_block_1.RDB1.conv1.0.weight"
    gc = conv_shape(state, gc_key)[0]
    n_taps = len(indices(state, r"b_block_(\d+)\."))
    convs = indices(state, r"b_module\.(\d+)\.weight")
    scale, guesses = scale_from_nearest_upconvs(len(convs) - 2, model_scale, "SPSR-G")
    for backbone, (first, _, blocks) in _BRANCHES.items():  # noqa: B007 - read after the loop
        if first in state:
            nb = count_blocks(state, blocks)
            break
    else:
        raise CheckpointError("SPSR checkpoint with an unknown SR-branch layout")
    in_nc = head_nc
    if head_nc == out_nc * scale * scale and head_nc != out_nc:
        extra["desubpixel_head"], in_nc = True, out_nc
    spec = ArchSpec("spsr", scale, in_nc, out_nc, nf, nb, gc, backbone, tap_points(nb, n_taps), extra)
    return Detected(spec, dict(state), f"SPSR-G ({backbone} SR branch)", guesses)


def check(spec: ArchSpec) -> None:
    taps = spec.taps if spec.taps is not None else tap_points(spec.nb)
    if not taps or any(t < 1 or t > spec.nb for t in taps):
        raise ValueError(f"tap points {tuple(taps)} must lie in 1..{spec.nb}")
    if spec.extra.get("image_skip") and spec.extra.get("desubpixel_head"):
        raise ValueError("image_skip and desubpixel_head cannot be combined")


def build(spec: ArchSpec) -> nn.Module:
    return SPSRNet(spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.gc, spec.scale,
                   taps=spec.taps, backbone=spec.backbone, **spec.extra)


FAMILY = Family(
    name="spsr",
    title="SPSR-G",
    scales=(2, 3, 4, 8),
    default_nb=23,
    build=build,
    detect=detect,
    extra={"res_scale": (int, float), "desubpixel_head": bool, "image_skip": bool, "fusion_block": bool},
    check=check,
    describe_extra=lambda spec: f", backbone {spec.backbone}",
    takes_upsampled_lr=lambda spec: bool(spec.extra.get("desubpixel_head", False)),
    gradient_branch=True,
    wraps_backbone=True,
    sr_branch_prefix="model.",
    growth_channels=True,
    layouts=(
        Layout("SPSR (official)", "SPSR-G", "2*, 3*, 4, 8",
               "model.* (ESRGAN old layout), b_fea_conv, b_block_i, b_concat_i, b_module, conv_w, "
               "f_block, f_HR_conv0/1"),
    ),
)
