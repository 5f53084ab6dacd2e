"""The metrics ``spsr eval`` knows, their direction, and a suite that scores an image with several.

A :class:`MetricSuite` loads what its metrics need once (LPIPS network, Ma's forests) when it is built,
so a missing weights file fails before any work, and it shares the prepared Y image between NIQE,
Ma and PI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from spsr.errors import ConfigError
from spsr.metrics.conventions import (
    CONVENTIONS,
    DEFAULT_PROTOCOL,
    OVERRIDABLE,
    Scoring,
    luminance,
    resolve_protocol,
    shave,
)
from spsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

if TYPE_CHECKING:
    from spsr.weights import Need


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is and which way is better.

    Attributes:
        name: the ``--metrics`` name.
        label: column header.
        higher_is_better: direction.
        needs_reference: compares against the HR image (full-reference).
        decimals: digits the papers print.
        files: the model files it loads, each as ``(file key in spsr.weights.SPECS, the
            EvalSettings field that may name the file instead, the option that sets it)``.
    """

    name: str
    label: str
    higher_is_better: bool
    needs_reference: bool
    decimals: int
    files: tuple[tuple[str, str, str], ...] = ()


#: AlexNet for LPIPS (the lpips package's linear layers ship inside the lpips wheel).
_ALEXNET = ("alexnet", "lpips_backbone", "--lpips-backbone PATH")
#: Ma et al.'s regression forests, for Ma and PI.
_MA_MODEL = ("ma-model", "ma_model", "--ma-model PATH")


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("psnr", "PSNR", True, True, 2),
        MetricInfo("ssim", "SSIM", True, True, 4),
        MetricInfo("lpips", "LPIPS", False, True, 4, (_ALEXNET,)),
        MetricInfo("niqe", "NIQE", False, False, 4),
        MetricInfo("ma", "Ma", True, False, 4, (_MA_MODEL,)),
        MetricInfo("pi", "PI", False, False, 4, (_MA_MODEL,)),
        MetricInfo("gradmap_l1", "GradMap L1", False, True, 4),
    )
}
ALL_METRICS: tuple[str, ...] = tuple(METRICS)


def metric_needs(
    metrics: Iterable[str], lpips_backbone: str | None = None, ma_model: str | None = None
) -> list[Need]:
    """The files a ``--metrics`` list needs (as its metrics declare them), each with the option
    that supplies it; ``lpips_backbone`` / ``ma_model`` are the files given explicitly."""
    from spsr.weights import Need, spec

    explicit = {"lpips_backbone": lpips_backbone or None, "ma_model": ma_model or None}
    return [
        Need(spec(key), explicit[field], option, f"metric {m}")
        for m in metrics
        for key, field, option in (METRICS[m].files if m in METRICS else ())
    ]


def parse_metrics(spec: str) -> tuple[str, ...]:
    """``"psnr,ssim"`` / ``"all"`` → metric names in canonical order.

    Raises:
        ConfigError: an unknown name or an empty list.
    """
    names = [n.strip().lower() for n in spec.replace(" ", ",").split(",") if n.strip()]
    if "all" in names:
        return ALL_METRICS
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(
            f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(ALL_METRICS)} or all"
        )
    if not names:
        raise ConfigError("no metric given; choose from " + ", ".join(ALL_METRICS) + " or all")
    return tuple(n for n in ALL_METRICS if n in names)


@dataclass(frozen=True)
class EvalSettings:
    """How a suite scores. Build it with :meth:`for_protocol`, which resolves the conventions.

    Attributes:
        metrics: names, from :func:`parse_metrics`.
        crop_border: border shaved for PSNR and SSIM (the papers: the scale).
        y_channel: PSNR/SSIM on Y (papers) or on RGB.
        pi_border: border shaved for NIQE, Ma and PI (PIRM protocol: 4), always on Y.
        lpips_backbone: AlexNet weights file; None: torchvision's cache.
        ma_model: Ma's ``model.mat``; None: the cache folder.
        device: where LPIPS runs.
        protocol: the protocol the conventions come from (``spsr``, ``basicsr``).
        ssim_downsample: ``ssim.m``'s automatic downsampling before SSIM; None: the protocol's.
        overrides: conventions set on top of the protocol (see :class:`Scoring`); a
            ``y_channel``, ``pi_border`` or ``ssim_downsample`` that differs from the protocol's
            is added by itself, so the recorded protocol never claims what was not done.

    Raises:
        ConfigError: an unknown protocol.
    """

    metrics: tuple[str, ...]
    crop_border: int
    y_channel: bool = True
    pi_border: int = 4
    lpips_backbone: str | None = None
    ma_model: str | None = None
    device: str = "cpu"
    protocol: str = DEFAULT_PROTOCOL
    ssim_downsample: bool | None = None
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        preset = resolve_protocol(self.protocol, max(1, self.crop_border))
        object.__setattr__(self, "protocol", preset.protocol)
        if self.ssim_downsample is None:
            object.__setattr__(self, "ssim_downsample", preset.ssim_downsample)
        differ = {
            k for k in ("y_channel", "pi_border", "ssim_downsample")
            if getattr(self, k) != getattr(preset, k)
        }
        if differ - set(self.overrides):
            wanted = set(self.overrides) | differ
            object.__setattr__(self, "overrides", tuple(k for k in OVERRIDABLE if k in wanted))

    @classmethod
    def for_protocol(
        cls,
        metrics: tuple[str, ...],
        scale: int,
        protocol: str = DEFAULT_PROTOCOL,
        *,
        crop_border: int | None = None,
        y_channel: bool | None = None,
        pi_border: int | None = None,
        ssim_downsample: bool | None = None,
        lpips_backbone: str | None = None,
        ma_model: str | None = None,
        device: str = "cpu",
    ) -> EvalSettings:
        """Settings with the conventions of ``protocol`` at ``scale``; the convention arguments
        that are not None override the preset's (:func:`resolve_protocol`).

        Raises:
            ConfigError: an unknown protocol or a negative border.
        """
        scoring = resolve_protocol(
            protocol,
            scale,
            crop_border=crop_border,
            y_channel=y_channel,
            pi_border=pi_border,
            ssim_downsample=ssim_downsample,
        )
        return cls(
            metrics=metrics,
            crop_border=scoring.crop_border,
            y_channel=scoring.y_channel,
            pi_border=scoring.pi_border,
            lpips_backbone=lpips_backbone,
            ma_model=ma_model,
            device=device,
            protocol=scoring.protocol,
            ssim_downsample=scoring.ssim_downsample,
            overrides=scoring.overrides,
        )

    @property
    def scoring(self) -> Scoring:
        """The resolved conventions."""
        return Scoring(
            self.protocol,
            self.crop_border,
            self.y_channel,
            self.pi_border,
            bool(self.ssim_downsample),
            self.overrides,
        )


class MetricSuite:
    """Scores images with a set of metrics.

    Args:
        settings: what to compute and how.
        lpips_random_backbone: build LPIPS on a random AlexNet (tests only: not LPIPS).

    Raises:
        MissingWeightsError: LPIPS or Ma asked for and their weights are neither available nor
            downloadable (:class:`spsr.weights.MissingFilesError` lists every such file).
        ConfigError: a negative border.
    """

    def __init__(self, settings: EvalSettings, lpips_random_backbone: bool = False) -> None:
        if settings.crop_border < 0 or settings.pi_border < 0:
            raise ConfigError("crop borders must be >= 0")
        self.settings = settings
        self.lpips = None
        self.ma_model = None
        from spsr.weights import ensure_files

        needs = metric_needs(
            [m for m in settings.metrics if not (m == "lpips" and lpips_random_backbone)],
            settings.lpips_backbone, settings.ma_model,
        )
        ensure_files(needs)  # fetches what is missing; reports every file it cannot have at once
        if "lpips" in settings.metrics:
            from spsr.metrics.lpips_metric import LPIPSMetric

            self.lpips = LPIPSMetric(
                settings.lpips_backbone, settings.device, random_backbone=lpips_random_backbone
            )
        if "ma" in settings.metrics or "pi" in settings.metrics:
            from spsr.metrics.nrqm import load_ma_model

            self.ma_model = load_ma_model(settings.ma_model)

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.settings.metrics

    @property
    def needs_reference(self) -> bool:
        return any(METRICS[m].needs_reference for m in self.metrics)

    def score(self, sr: np.ndarray, hr: np.ndarray | None) -> dict[str, float]:
        """All metrics of one SR image.

        Args:
            sr: ``(H, W[, 3])`` ``uint8``.
            hr: the reference of the same size (None only when no metric needs one).

        Returns:
            ``{metric: value}`` in the suite's order.
        """
        s = self.settings
        out: dict[str, float] = {}
        if self.needs_reference and hr is None:
            raise ConfigError("a full-reference metric was asked for without an HR image")
        if "psnr" in s.metrics:
            out["psnr"] = calculate_psnr(sr, hr, s.crop_border, s.y_channel)  # type: ignore[arg-type]
        if "ssim" in s.metrics:
            out["ssim"] = calculate_ssim(
                sr, hr, s.crop_border, s.y_channel, bool(s.ssim_downsample)  # type: ignore[arg-type]
            )
        if "gradmap_l1" in s.metrics:
            from spsr.metrics.gradmap import calculate_gradmap_l1

            out["gradmap_l1"] = calculate_gradmap_l1(sr, hr, s.crop_border)  # type: ignore[arg-type]
        if self.lpips is not None:
            out["lpips"] = self.lpips(sr, hr)  # type: ignore[arg-type]
        if any(m in s.metrics for m in ("niqe", "ma", "pi")):
            out.update(self._perceptual(sr))
        return {m: out[m] for m in s.metrics}

    def _perceptual(self, sr: np.ndarray) -> dict[str, float]:
        from spsr.metrics.niqe import niqe_of_y
        from spsr.metrics.nrqm import ma_of_y
        from spsr.metrics.pi import pi_from_scores

        y = shave(luminance(sr), self.settings.pi_border)
        out: dict[str, float] = {}
        wants = self.settings.metrics
        if "niqe" in wants or "pi" in wants:
            out["niqe"] = niqe_of_y(y)
        if self.ma_model is not None:
            out["ma"] = ma_of_y(y, self.ma_model)
        if "pi" in wants:
            out["pi"] = pi_from_scores(out["ma"], out["niqe"])
        return out

    def describe(self) -> dict[str, object]:
        """The settings and conventions, for a results file."""
        settings = asdict(self.settings)
        settings["metrics"] = list(self.metrics)
        settings["overrides"] = list(self.settings.overrides)
        conventions = {
            k: v for k, v in CONVENTIONS.items() if k not in ALL_METRICS or k in self.metrics
        }
        if not self.settings.y_channel:
            conventions["y_channel"] = "not used for PSNR/SSIM (--rgb); NIQE/Ma/PI still on Y"
        if "ssim" not in self.metrics:
            conventions.pop("ssim_downsample")
        return {
            "protocol": self.settings.scoring.describe(),
            "settings": settings,
            "conventions": conventions,
            "better": {m: "higher" if METRICS[m].higher_is_better else "lower" for m in self.metrics},
        }

