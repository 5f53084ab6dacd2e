"""The one place that decides how an image becomes the numbers a metric sees.

Every score is made under one *protocol*, a named set of conventions of a published scorer
(:data:`PROTOCOLS`); ``spsr eval``, ``spsr ablate`` and training validation all resolve theirs with
:func:`resolve_protocol`, and single conventions can be overridden on top of the preset:

* ``spsr`` (default): the scorer of the CVPR 2020 and TPAMI 2021 tables. PSNR on the rounded Y,
  border = the scale; SSIM through the automatic downsampling of Wang's reference ``ssim.m``
  (``f = max(1, round(min(M, N) / 256))``, f×f mean filter, every f-th pixel) and then the 11×11
  Gaussian SSIM; NIQE, Ma and PI on Y with 4 pixels shaved (PIRM); LPIPS on RGB. Bicubic ×4:
  Set5 28.42 dB / 0.8244, Set14 26.08 / 0.7845 (TPAMI 2021 Table 1: 28.42 / 0.8245, 0.7850).
* ``basicsr``: the convention of BasicSR's metric scripts and of most other SR tables (EDSR, RCAN,
  ESRGAN): the same, but SSIM at full resolution. Bicubic ×4: Set5 0.8101, Set14 0.7041.

Conventions shared by both:

* 8-bit images. A float image in [0, 1] is first quantised to 8 bits (``round(x * 255)``), as if it
  had been saved, so a tensor and the file written from it score the same.
* Y channel of MATLAB ``rgb2ycbcr`` on the 8-bit image, *rounded to 8 bits* (halves away from zero)
  as MATLAB returns it for ``uint8`` input (:func:`spsr.ops.rgb_to_y_np`). Chosen by experiment:
  bicubic x4 gives Set5 28.416 dB and Set14 26.084 dB with the rounded Y, against 28.429 and 26.088
  unrounded; the papers print 28.42 and 26.09.
* Grayscale images count as R = G = B (their Y is ``16 + 219 v / 255``, rounded).
* A border of ``crop_border`` pixels (default: the scale) is shaved from every side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from spsr.errors import ConfigError, SpsrError
from spsr.ops import rgb_to_y_np
from spsr.ops.rounding import round_half_away


class MetricInputError(SpsrError):
    """Images a metric cannot score: wrong dtype, mismatched sizes, too small after shaving."""


#: The conventions every metric shares, written into ``spsr eval --json`` (before each metric's
#: own, :attr:`spsr.metrics.metric.Metric.conventions`) so a result file says how its numbers were made.
SHARED_CONVENTIONS: dict[str, str] = {
    "y_channel": "Y of MATLAB rgb2ycbcr (BT.601 studio swing, 16-235) on 8-bit RGB, rounded to "
    "8 bits as MATLAB returns it for uint8 images",
    "grayscale": "R = G = B",
    "float_input": "quantised to 8 bits first: round(x * 255)",
    "crop_border": "pixels shaved from every side before PSNR and SSIM; default = the scale",
    "pi_border": "pixels shaved from every side before NIQE, Ma and PI; default 4 (PIRM)",
}
#: How ``spsr eval`` makes LR images from HR ones (written after the metrics' conventions).
DEGRADATION_CONVENTIONS: dict[str, str] = {
    "degradation": "HR mod-cropped to a multiple of the scale, LR = MATLAB imresize bicubic "
    "(antialiased), rounded to 8 bits (halves away from zero) after each axis",
}


@dataclass(frozen=True)
class Protocol:
    """The conventions of one published scorer.

    Attributes:
        name: the ``--protocol`` name.
        summary: one line: whose scorer it is.
        reproduces: the published tables whose conventions it follows, and the rows checked.
        ssim_downsample: ``ssim.m``'s automatic downsampling before SSIM.
        y_channel: PSNR/SSIM on the evaluation Y (else on RGB).
        pi_border: border shaved for NIQE, Ma and PI.
        crop_border: border shaved for PSNR and SSIM; None: the scale.
    """

    name: str
    summary: str
    reproduces: str
    ssim_downsample: bool
    y_channel: bool = True
    pi_border: int = 4
    crop_border: int | None = None


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "spsr",
            "the SPSR papers' scorer: SSIM through ssim.m's automatic downsampling",
            "the conventions of CVPR 2020 Tables 1-2 and TPAMI 2021 Tables 1-7, checked on "
            "their bicubic x4 rows (Set5 28.42 / 0.8245 as printed; Set14 26.08 / 0.7845 vs the "
            "printed 26.100 / 0.7850, another copy of Set14)",
            ssim_downsample=True,
        ),
        Protocol(
            "basicsr",
            "BasicSR's metric scripts: SSIM at full resolution",
            "EDSR, RCAN, ESRGAN and most other SR tables (bicubic x4: Set5 28.42 / 0.8104, "
            "Set14 0.704)",
            ssim_downsample=False,
        ),
    )
}
DEFAULT_PROTOCOL = "spsr"


@dataclass(frozen=True)
class Scoring:
    """A protocol resolved for one scale, with any single conventions set on top of it: the one
    form the conventions take from the command line to the results file and back.

    :func:`resolve_protocol` makes it (the only place that applies a preset and its overrides)
    from ``--protocol`` and the single-convention options; a
    :class:`~spsr.metrics.registry.EvalSettings` holds it as its ``scoring``, each metric reads it
    (``job.scoring``, ``notes(scoring)``), :meth:`record` writes its fields flat under a results
    file's ``settings``, and :meth:`from_record` reads them back (``spsr eval --merge``, a table's
    footnote).

    Attributes:
        protocol: the preset's name.
        crop_border: border shaved for PSNR and SSIM.
        y_channel: PSNR/SSIM on Y (else RGB).
        pi_border: border shaved for NIQE, Ma and PI.
        ssim_downsample: ``ssim.m``'s downsampling before SSIM.
        overrides: the conventions that differ from the preset, in field order.
    """

    protocol: str
    crop_border: int
    y_channel: bool
    pi_border: int
    ssim_downsample: bool
    overrides: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``spsr``, or ``spsr + crop_border=0, ssim_downsample=off`` with overrides."""
        if not self.overrides:
            return self.protocol
        parts = []
        for name in self.overrides:
            value = getattr(self, name)
            parts.append(f"{name}={('on' if value else 'off') if isinstance(value, bool) else value}")
        return f"{self.protocol} + {', '.join(parts)}"

    def record(self) -> dict[str, object]:
        """The fields as a results file's ``settings`` holds them (flat, ``overrides`` as a list);
        :meth:`from_record` reads them back."""
        return {
            "protocol": self.protocol,
            "crop_border": self.crop_border,
            "y_channel": self.y_channel,
            "pi_border": self.pi_border,
            "ssim_downsample": self.ssim_downsample,
            "overrides": list(self.overrides),
        }

    @classmethod
    def from_record(cls, settings: Mapping[str, object]) -> Scoring | None:
        """The scoring a results file recorded: the fields :meth:`record` wrote into its
        ``settings`` (other keys of ``settings`` are ignored). None for files written before
        protocols were recorded."""
        try:
            return cls(
                protocol=str(settings["protocol"]),
                crop_border=int(settings["crop_border"]),  # type: ignore[call-overload]
                y_channel=bool(settings["y_channel"]),
                pi_border=int(settings["pi_border"]),  # type: ignore[call-overload]
                ssim_downsample=bool(settings["ssim_downsample"]),
                overrides=tuple(settings.get("overrides", ())),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError):
            return None

    def describe(self) -> dict[str, object]:
        """For a results file: the protocol, its overrides and the tables it reproduces."""
        preset = PROTOCOLS[self.protocol]
        return {
            "name": self.protocol,
            "label": self.label,
            "summary": preset.summary,
            "reproduces": preset.reproduces if not self.overrides else "none as such (overridden)",
            "overrides": {name: getattr(self, name) for name in self.overrides},
        }


#: The conventions a protocol fixes that single options may override, in recording order.
OVERRIDABLE = ("crop_border", "y_channel", "pi_border", "ssim_downsample")


def protocol_names() -> tuple[str, ...]:
    """The ``--protocol`` choices."""
    return tuple(PROTOCOLS)


def get_protocol(name: str) -> Protocol:
    """The preset called ``name`` (case-insensitive).

    Raises:
        ConfigError: an unknown name.
    """
    protocol = PROTOCOLS.get(name.strip().lower())
    if protocol is None:
        raise ConfigError(
            f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}"
        )
    return protocol


def resolve_protocol(
    name: str,
    scale: int,
    *,
    crop_border: int | None = None,
    y_channel: bool | None = None,
    pi_border: int | None = None,
    ssim_downsample: bool | None = None,
) -> Scoring:
    """The conventions of protocol ``name`` at ``scale``, with the given ones set on top.

    Args:
        name: a :data:`PROTOCOLS` name.
        scale: the scale factor (the preset's PSNR/SSIM border when it has none of its own).
        crop_border: override of the PSNR/SSIM border (None: the preset's).
        y_channel: override (None: the preset's).
        pi_border: override (None: the preset's).
        ssim_downsample: override (None: the preset's).

    Raises:
        ConfigError: an unknown protocol or a negative border.
    """
    preset = get_protocol(name)
    base = Scoring(
        protocol=preset.name,
        crop_border=scale if preset.crop_border is None else preset.crop_border,
        y_channel=preset.y_channel,
        pi_border=preset.pi_border,
        ssim_downsample=preset.ssim_downsample,
    )
    given = {
        "crop_border": crop_border,
        "y_channel": y_channel,
        "pi_border": pi_border,
        "ssim_downsample": ssim_downsample,
    }
    for key in ("crop_border", "pi_border"):
        value = given[key]
        if value is not None and value < 0:
            raise ConfigError(f"{key.replace('_', ' ')} must be >= 0, got {value}")
    changed: dict[str, Any] = {k: v for k, v in given.items() if v is not None and v != getattr(base, k)}
    overrides = tuple(k for k in OVERRIDABLE if k in changed)
    return replace(base, **changed, overrides=overrides)


def as_uint8_image(img: np.ndarray, name: str = "image") -> np.ndarray:
    """Bring an image to 8-bit ``(H, W, 3)`` or ``(H, W)``.

    Args:
        img: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``; ``uint8``, or float in [0, 1].
        name: how error messages call the image.

    Returns:
        ``uint8`` array; ``(H, W, 1)`` becomes ``(H, W)``.

    Raises:
        MetricInputError: another dtype or shape.
    """
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise MetricInputError(f"{name}: expected an (H, W) or (H, W, 3) image, got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    raise MetricInputError(f"{name}: expected uint8 or float in [0, 1], got {arr.dtype}")


def shave(arr: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from every side of the first two axes."""
    if border < 0:
        raise MetricInputError(f"crop border must be >= 0, got {border}")
    if border == 0:
        return arr
    if arr.shape[0] <= 2 * border or arr.shape[1] <= 2 * border:
        raise MetricInputError(
            f"image {arr.shape[0]}x{arr.shape[1]} is too small to shave a {border}-pixel border"
        )
    return arr[border:-border, border:-border]


def y_levels(img: np.ndarray) -> np.ndarray:
    """The evaluation Y channel: rounded MATLAB ``rgb2ycbcr`` Y of the 8-bit image, as float64.

    Args:
        img: ``(H, W)`` or ``(H, W, 3)`` ``uint8`` (or float in [0, 1], quantised first).

    Returns:
        ``(H, W)`` float64 with integer values in [16, 235].
    """
    return rgb_to_y_np(as_uint8_image(img)).astype(np.float64)


def gray_levels(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray`` of the 8-bit image, rounded, as float64 ``(H, W)`` (the no-reference
    metrics' alternative to Y with ``--rgb``)."""
    u8 = as_uint8_image(img)
    if u8.ndim == 2:
        return u8.astype(np.float64)
    weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.clip(round_half_away(u8.astype(np.float64) @ weights), 0, 255)


def luminance(img: np.ndarray, y_channel: bool = True) -> np.ndarray:
    """The single channel the no-reference metrics (NIQE, Ma, PI) score: the evaluation Y, or the
    MATLAB gray level when ``y_channel`` is False."""
    return y_levels(img) if y_channel else gray_levels(img)


def metric_channels(img: np.ndarray, y_channel: bool, crop_border: int) -> np.ndarray:
    """The float64 ``(H, W, C)`` array in 0..255 that PSNR/SSIM compare.

    Args:
        img: 8-bit image (or float in [0, 1]).
        y_channel: True → C = 1 (the evaluation Y); False → C = 3 (RGB, gray repeated).
        crop_border: border to shave.
    """
    u8 = as_uint8_image(img)
    if y_channel:
        out = rgb_to_y_np(u8).astype(np.float64)[:, :, None]
    else:
        rgb = u8 if u8.ndim == 3 else np.repeat(u8[:, :, None], 3, axis=2)
        out = rgb.astype(np.float64)
    return shave(out, crop_border)
