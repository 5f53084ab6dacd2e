"""spsr's CPU inference kernels for the torch engine, applied to a plain network.

The networks in :mod:`spsr.archs` run plain PyTorch. :func:`accelerate` gives a loaded network's
RRDB blocks, trunks and generators subclasses whose inference forward uses the kernels of
:mod:`.fused` (oneDNN convolutions with the LeakyReLU or the residual add fused, nearest ×2 +
3×3 conv as one 2×2 convolution) and :mod:`.winograd` (F(4×4, 3×3) for the dense blocks): the
same weights and state-dict keys, the same results within fp32 rounding (about 1e-5). Each fast
forward takes the kernels only where they apply (:func:`.fused.use_fused`: CPU, fp32, no
autograd, no autocast, no :func:`plain_forward`) and the plain forward everywhere else, so an
accelerated network still trains and runs under autocast as before.

They win on AVX2-class CPUs (whole process 1.5–1.9× the official eager forward, README
"Performance on the CPU"); on CPUs with native bf16, ``--engine auto`` runs OpenVINO instead.
"""

from __future__ import annotations

import torch
from torch import nn

from spsr.archs.blocks import RRDB, ResidualDenseBlock
from spsr.archs.rrdb_net import RRDBNet, RRDBTrunk
from spsr.archs.spsr_net import SPSRNet
from spsr.engines.torch_fast import fused, winograd
from spsr.engines.torch_fast.fused import FUSED_OPS, plain_forward, use_fused


class FastResidualDenseBlock(ResidualDenseBlock):
    """A dense block whose inference forward fuses conv + LeakyReLU and the residual add."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_fused(x):
            return self.fused_forward(x, x.clone(memory_format=fused.memory_format_of(x)), 0.2)
        return super().forward(x)

    def fused_forward(self, x: torch.Tensor, out: torch.Tensor, scale: float) -> torch.Tensor:
        """Inference only: ``out + scale·conv5(…)`` written into ``out``, conv+LReLU fused."""
        feats = [x]
        for block in (self.conv1, self.conv2, self.conv3, self.conv4):
            conv, act = block[0], block[1]
            assert isinstance(conv, nn.Conv2d) and isinstance(act, nn.LeakyReLU)
            inp = torch.cat(feats, 1) if len(feats) > 1 else x
            feats.append(fused.conv_lrelu(conv, inp, act.negative_slope))
        last = self.conv5[0]
        assert isinstance(last, nn.Conv2d)
        return fused.conv_residual_(last, torch.cat(feats, 1), out, scale)


class FastRRDB(RRDB):
    """An RRDB whose inference forward runs in Winograd (maps ≥ 48²) or with fused convolutions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if use_fused(x) and winograd.applies(x):
            return winograd.rrdb_forward(self, x)
        last = self.RDB3
        if use_fused(x) and isinstance(last, FastResidualDenseBlock):
            # x + 0.2·(r + 0.2·conv5) = (x + 0.2·r) + 0.04·conv5, with r RDB3's input: one pass fewer.
            r = self.RDB2(self.RDB1(x))
            return last.fused_forward(r, torch.add(x, r, alpha=0.2), 0.04)
        return super().forward(x)


class FastRRDBTrunk(RRDBTrunk):
    run_layers = staticmethod(fused.run_layers)


class FastRRDBNet(RRDBNet):
    run_layers = staticmethod(fused.run_layers)


class FastSPSRNet(SPSRNet):
    run_layers = staticmethod(fused.run_layers)


#: Plain class → its fast subclass (exact types only: a subclass of a plain class keeps its own).
FAST_CLASSES: dict[type[nn.Module], type[nn.Module]] = {
    ResidualDenseBlock: FastResidualDenseBlock,
    RRDB: FastRRDB,
    RRDBTrunk: FastRRDBTrunk,
    RRDBNet: FastRRDBNet,
    SPSRNet: FastSPSRNet,
}


def accelerate(model: nn.Module) -> nn.Module:
    """Give ``model``'s modules the fast CPU inference forwards, in place; returns ``model``.

    Only the class of each RRDB block, trunk and generator changes (to a subclass): parameters,
    buffers and state-dict keys stay as they are, and outside CPU fp32 inference the forwards
    are the plain ones. Nothing happens where this PyTorch build lacks the fused operators.
    """
    if not FUSED_OPS:
        return model
    for module in model.modules():
        fast = FAST_CLASSES.get(type(module))
        if fast is not None:
            module.__class__ = fast
    return model


__all__ = ["FAST_CLASSES", "FUSED_OPS", "accelerate", "plain_forward", "use_fused"]
