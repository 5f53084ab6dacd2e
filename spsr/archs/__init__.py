"""Networks: generators (RRDBNet, SPSR-G, EDSR, SRResNet) and, in their own modules, discriminators."""

from __future__ import annotations

import torch

from spsr.archs.edsr_net import EDSR
from spsr.archs.registry import Family, arch_names, backbone_names, family
from spsr.archs.rrdb_net import RRDBNet
from spsr.archs.spec import ArchSpec, build_model
from spsr.archs.spsr_net import SPSRNet, SROutput
from spsr.archs.srresnet_net import SRResNet


def __getattr__(name: str) -> object:
    """``ARCHS``: the registered families' names (derived from the registry)."""
    if name == "ARCHS":
        return arch_names()
    raise AttributeError(name)


def sr_of(output: torch.Tensor | SROutput) -> torch.Tensor:
    """The SR image of a generator's output, whether a plain tensor or an ``SROutput``."""
    return output.sr if isinstance(output, SROutput) else output


__all__ = [
    "ARCHS", "EDSR", "ArchSpec", "Family", "RRDBNet", "SPSRNet", "SROutput", "SRResNet",
    "arch_names", "backbone_names", "build_model", "family", "sr_of",
]
