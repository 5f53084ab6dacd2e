"""Networks: generators (RRDBNet, SPSR-G, EDSR, SRResNet) and, in their own modules, discriminators."""

from __future__ import annotations

import torch

from spsr.archs.edsr import EDSR
from spsr.archs.rrdb import RRDBNet
from spsr.archs.spec import ARCHS, ArchSpec, build_model
from spsr.archs.spsr_net import SPSRNet, SROutput
from spsr.archs.srresnet import SRResNet


def sr_of(output: torch.Tensor | SROutput) -> torch.Tensor:
    """The SR image of a generator's output, whether a plain tensor or an ``SROutput``."""
    return output.sr if isinstance(output, SROutput) else output


__all__ = ["ARCHS", "EDSR", "ArchSpec", "RRDBNet", "SPSRNet", "SROutput", "SRResNet", "build_model", "sr_of"]
