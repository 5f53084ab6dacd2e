"""SRResNet without batch norm: spsr's layout and BasicSR's MSRResNet (×2/×3/×4).

spsr: ``conv_first``, ``body.N.conv1/2``, ``upsample.0`` (and ``upsample.3`` for ×4),
``conv_hr``, ``conv_last``. BasicSR MSRResNet names the up-convs ``upconv1`` / ``upconv2``; the
layer arrangement is the same (LeakyReLU 0.1, no long skip over the body, bilinear image skip).
"""

from __future__ import annotations

from torch import nn

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
from spsr.archs.srresnet_net import SRResNet
from spsr.errors import CheckpointError


def detect(state: StateDict, model_scale: int | None) -> Detected | None:
    if "conv_first.weight" not in state or "conv_hr.weight" not in state or "body.0.conv1.weight" not in state:
        return None
    if "upconv1.weight" in state:
        layout = "BasicSR MSRResNet"
        canon = rename(state, [
            (r"(conv_first|conv_hr|conv_last)\.(weight|bias)", r"\1.\2"),
            (r"body\.(\d+)\.(conv[12])\.(weight|bias)", r"body.\1.\2.\3"),
            (r"upconv1\.(weight|bias)", r"upsample.0.\1"),
            (r"upconv2\.(weight|bias)", r"upsample.3.\1"),
        ], layout)
    else:
        layout, canon = "SRResNet", dict(state)
    nf, in_nc = conv_shape(canon, "conv_first.weight")
    ups = indices(canon, r"upsample\.(\d+)\.weight")
    factor = conv_shape(canon, "upsample.0.weight")[0] // nf
    scale = 3 if factor == 9 and len(ups) == 1 else {1: 2, 2: 4}.get(len(ups), 0) if factor == 4 else 0
    if scale == 0:
        raise CheckpointError(f"{layout} with {len(ups)} up-convs of {factor}x{nf} channels: no supported scale")
    nb = count_blocks(canon, r"body\.(\d+)\.conv1\.")
    out_nc = conv_shape(canon, "conv_last.weight")[0]
    return Detected(ArchSpec("srresnet", scale, in_nc, out_nc, nf, nb), canon, layout)


def build(spec: ArchSpec) -> nn.Module:
    return SRResNet(spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.scale)


def branch(in_nc: int, out_nc: int, nf: int, nb: int, gc: int, scale: int,
           res_scale: float) -> tuple[nn.Module, nn.Module | None]:
    return SRResNet(in_nc, out_nc, nf, nb, scale, feature_only=True), None


def branch_state(state: StateDict, spec: ArchSpec, target: ArchSpec) -> StateDict:
    return {f"model.{k}": v for k, v in state.items() if not k.startswith("conv_last.")}


FAMILY = Family(
    name="srresnet",
    title="SRResNet",
    scales=(2, 3, 4),
    default_nb=16,
    build=build,
    detect=detect,
    branch=branch,
    branch_state=branch_state,
    layouts=(
        Layout("BasicSR", "MSRResNet", "2, 3, 4",
               "conv_first, body.N.conv1/2, upconv1[, upconv2], conv_hr, conv_last"),
        Layout("spsr", "SRResNet", "2, 3, 4",
               "conv_first, body.N.conv1/2, upsample.0[, upsample.3], conv_hr, conv_last"),
    ),
)
