"""``ArchSpec``: everything needed to rebuild a generator, stored in every weights file we write."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torch import nn

ARCHS = ("rrdb", "spsr", "edsr", "srresnet")
SCALES = (2, 3, 4, 8)


@dataclass(frozen=True)
class ArchSpec:
    """A generator's architecture and hyperparameters.

    Attributes:
        arch: ``rrdb`` (ESRGAN), ``spsr`` (SPSR-G generator), ``edsr`` or ``srresnet``.
        scale: upscaling factor.
        in_nc: input channels.
        out_nc: output channels.
        nf: feature channels.
        nb: backbone blocks.
        gc: RRDB growth channels.
        backbone: SR-branch backbone of an ``spsr`` generator.
        taps: gradient-branch tap points (``spsr`` only; None = evenly spread).
        extra: further constructor options (e.g. ``res_scale``), JSON-serialisable.
    """

    arch: str = "spsr"
    scale: int = 4
    in_nc: int = 3
    out_nc: int = 3
    nf: int = 64
    nb: int = 23
    gc: int = 32
    backbone: str = "rrdb"
    taps: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; use one of {', '.join(ARCHS)}")
        if self.scale not in SCALES:
            raise ValueError(f"unsupported scale {self.scale}; use one of {SCALES}")
        if self.taps is not None:
            object.__setattr__(self, "taps", tuple(int(t) for t in self.taps))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["taps"] = list(self.taps) if self.taps is not None else None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def describe(self) -> str:
        name = {"rrdb": "RRDBNet (ESRGAN)", "spsr": "SPSR-G", "edsr": "EDSR", "srresnet": "SRResNet"}[self.arch]
        extra = f", backbone {self.backbone}" if self.arch == "spsr" else ""
        return f"{name} x{self.scale} (nf {self.nf}, nb {self.nb}{extra})"


def build_model(spec: ArchSpec) -> nn.Module:
    """Construct the generator a spec describes (weights randomly initialised)."""
    from spsr.archs.edsr import EDSR
    from spsr.archs.rrdb import RRDBNet
    from spsr.archs.spsr_net import SPSRNet
    from spsr.archs.srresnet import SRResNet

    if spec.arch == "rrdb":
        return RRDBNet(spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.gc, spec.scale)
    if spec.arch == "edsr":
        return EDSR(spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.scale, **spec.extra)
    if spec.arch == "srresnet":
        return SRResNet(spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.scale, **spec.extra)
    return SPSRNet(
        spec.in_nc, spec.out_nc, spec.nf, spec.nb, spec.gc, spec.scale,
        taps=spec.taps, backbone=spec.backbone, **spec.extra,
    )
