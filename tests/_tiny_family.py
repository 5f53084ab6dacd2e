"""A tiny generator family, registered by tests/archs/test_arch_capabilities.py exactly as
CONTRIBUTING.md's "Adding an architecture" says: this one module, one line in the registry's module
list, and its test. One conv to ``scale² · out_nc`` channels and a pixel shuffle (ESPCN-like, two
layers), so every path that reads the registry can run on it in milliseconds."""

from __future__ import annotations

import torch
from torch import nn

from spsr.archs.registry import Detected, Family, Layout, StateDict, conv_shape
from spsr.archs.spec import ArchSpec


class TinyNet(nn.Module):
    def __init__(self, in_nc: int, out_nc: int, nf: int, scale: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(in_nc, nf, 3, padding=1)
        self.tail = nn.Conv2d(nf, out_nc * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.tail(torch.relu(self.head(x))))


def detect(state: StateDict, model_scale: int | None) -> Detected | None:
    if set(state) != {"head.weight", "head.bias", "tail.weight", "tail.bias"}:
        return None
    nf, in_nc = conv_shape(state, "head.weight")
    out = conv_shape(state, "tail.weight")[0]
    scale = round((out / in_nc) ** 0.5)
    return Detected(ArchSpec("tiny", scale, in_nc, out // (scale * scale), nf, 1), dict(state), "tiny")


def build(spec: ArchSpec) -> nn.Module:
    return TinyNet(spec.in_nc, spec.out_nc, spec.nf, spec.scale)


FAMILY = Family(
    name="tiny",
    title="TinyNet",
    scales=(2, 4),
    default_nb=1,
    build=build,
    detect=detect,
    layouts=(Layout("tests", "TinyNet", "2, 4", "head, tail"),),
    default_init="pytorch",
)
