"""``ArchSpec``: everything needed to rebuild a generator, stored in every weights file we write.

The spec is validated against a schema when it is made (types, ranges, the family's scales and
``extra`` options, see :mod:`spsr.archs.registry`), so metadata that spsr did not write is
refused with one clear message before any network is built.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from torch import nn

#: Bounds of the schema: far above any published model (ESRGAN 64/23, EDSR 256/32), far below
#: what would exhaust memory before the parameter-count check runs.
LIMITS = {"in_nc": 64, "out_nc": 64, "nf": 2048, "nb": 1024, "gc": 1024}


def _int_field(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"architecture field {name} must be an integer, not {value!r}")  # noqa: TRY004 (callers map ValueError to their error)
    return value


@dataclass(frozen=True)
class ArchSpec:
    """A generator's architecture and hyperparameters.

    Attributes:
        arch: a registered family: ``rrdb`` (ESRGAN), ``spsr`` (SPSR-G generator), ``edsr``,
            ``srresnet``.
        scale: upscaling factor.
        in_nc: input channels.
        out_nc: output channels.
        nf: feature channels.
        nb: backbone blocks.
        gc: RRDB growth channels.
        backbone: SR-branch backbone of an ``spsr`` generator.
        taps: gradient-branch tap points (``spsr`` only; None = evenly spread).
        extra: further constructor options of the family (e.g. ``res_scale``), JSON-serialisable.
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
        from spsr.archs.registry import backbone_names, family

        if not isinstance(self.arch, str):
            raise ValueError(f"architecture field arch must be a string, not {self.arch!r}")  # noqa: TRY004 (callers map ValueError to their error)
        fam = family(self.arch)
        for name in ("scale", *LIMITS):
            value = _int_field(name, getattr(self, name))
            if name in LIMITS and not 1 <= value <= LIMITS[name]:
                raise ValueError(f"architecture field {name} = {value} is outside 1..{LIMITS[name]}")
        if self.scale not in fam.scales:
            raise ValueError(f"unsupported scale {self.scale} for {fam.title}; use one of {fam.scales}")
        if not isinstance(self.backbone, str) or self.backbone not in backbone_names():
            raise ValueError(f"unknown backbone {self.backbone!r}; use one of {', '.join(backbone_names())}")
        if self.taps is not None:
            if not isinstance(self.taps, (list, tuple)):
                raise ValueError(f"architecture field taps must be a list of integers, not {self.taps!r}")
            object.__setattr__(self, "taps", tuple(_int_field("taps", t) for t in self.taps))
        if not isinstance(self.extra, dict):
            raise ValueError(f"architecture field extra must be a table, not {self.extra!r}")  # noqa: TRY004 (callers map ValueError to their error)
        for key, value in self.extra.items():
            kind = fam.extra.get(key)
            if kind is None:
                known = ", ".join(sorted(fam.extra)) or "none"
                raise ValueError(f"unknown option {key!r} in extra for {fam.title} (known: {known})")
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise ValueError(f"extra option {key} of {fam.title} has the wrong type ({value!r})")
        if fam.check is not None:
            fam.check(self)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["taps"] = list(self.taps) if self.taps is not None else None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Any) -> ArchSpec:
        """A spec from a dict (``to_dict``'s inverse); ``ValueError`` for anything off-schema."""
        if not isinstance(d, dict):
            raise ValueError(f"architecture must be a table of fields, not {type(d).__name__}")  # noqa: TRY004 (callers map ValueError to their error)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown architecture fields: {', '.join(sorted(map(str, unknown)))}")
        return cls(**d)

    @property
    def takes_upsampled_lr(self) -> bool:
        """The generator takes the LR image nearest-upsampled to HR size (``upsampled=True``; the
        U-Net follow-up's desubpixel head, §3.1), as its family declares: training then hands
        MoA's batches to it at HR size, so CutBlur can put HR pixels in them."""
        from spsr.archs.registry import family

        declared = family(self.arch).takes_upsampled_lr
        return declared is not None and declared(self)

    @property
    def has_gradient_branch(self) -> bool:
        """The generator has SPSR's gradient branch (returns an ``SROutput``), as its family
        declares."""
        from spsr.archs.registry import family

        return family(self.arch).gradient_branch

    @property
    def family_title(self) -> str:
        from spsr.archs.registry import family

        return family(self.arch).title

    def describe(self) -> str:
        from spsr.archs.registry import family

        fam = family(self.arch)
        extra = fam.describe_extra(self) if fam.describe_extra else ""
        return f"{fam.title} x{self.scale} (nf {self.nf}, nb {self.nb}{extra})"


def build_model(spec: ArchSpec) -> nn.Module:
    """Construct the generator a spec describes (weights randomly initialised)."""
    from spsr.archs.registry import family

    return family(spec.arch).build(spec)
