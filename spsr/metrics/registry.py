"""The metric registry: every metric ``spsr eval``, ``spsr ablate`` and training validation know,
and a suite that scores an image with several.

Each metric is one module of :mod:`spsr.metrics.builtin` declaring a
:class:`~spsr.metrics.metric.Metric` (name, direction, files, conventions, compute function);
:data:`METRIC_MODULES` lists them, in the order ``all`` expands to and tables show. Adding a
metric is one module plus one line there (CONTRIBUTING.md, "Adding a metric"): ``--metrics``
and its help, the results files' conventions, the line under a table, ``spsr fetch`` and the
weights a run needs all read this registry.

A :class:`MetricSuite` loads what its metrics need once (LPIPS network, Ma's forests) when it is
built, so a missing weights file fails before any work, and its metrics share the prepared Y image
and each other's scores (PI from Ma and NIQE).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from spsr.errors import ConfigError
from spsr.metrics.conventions import (
    DEFAULT_PROTOCOL,
    DEGRADATION_CONVENTIONS,
    SHARED_CONVENTIONS,
    Scoring,
    get_protocol,
    resolve_protocol,
)
from spsr.metrics.metric import Metric, ScoreJob

if TYPE_CHECKING:
    from spsr.weights import Need

#: One module per metric, each defining ``METRIC``; the order of ``all`` and of table columns.
METRIC_MODULES = (
    "spsr.metrics.builtin.psnr",
    "spsr.metrics.builtin.ssim",
    "spsr.metrics.builtin.lpips",
    "spsr.metrics.builtin.niqe",
    "spsr.metrics.builtin.ma",
    "spsr.metrics.builtin.pi",
    "spsr.metrics.builtin.gradmap_l1",
)


def _load(modules: Iterable[str]) -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for module in modules:
        metric: Metric = importlib.import_module(module).METRIC
        found[metric.name] = metric
    return found


def _conventions(metrics: dict[str, Metric]) -> dict[str, str]:
    return {
        **SHARED_CONVENTIONS,
        **{key: text for m in metrics.values() for key, text in m.conventions.items()},
        **DEGRADATION_CONVENTIONS,
    }


METRICS: dict[str, Metric] = _load(METRIC_MODULES)
ALL_METRICS: tuple[str, ...] = tuple(METRICS)
#: How every number is made, as results files record it: the shared conventions, each metric's
#: own in registry order, then the degradation.
CONVENTIONS: dict[str, str] = _conventions(METRICS)


def metrics_help(describe: bool = True) -> str:
    """``psnr, ssim, ..., gradmap_l1 (the gradient-map error ...)`` for ``--metrics`` help texts:
    the registered names, with each metric's ``help`` words when ``describe``."""
    return ", ".join(f"{m.name} ({m.help})" if describe and m.help else m.name for m in METRICS.values())


def metric_needs(
    metrics: Iterable[str], lpips_backbone: str | None = None, ma_model: str | None = None
) -> list[Need]:
    """The files a ``--metrics`` list needs (as its metrics declare them), each with the option
    that supplies it; ``lpips_backbone`` / ``ma_model`` are the files given explicitly."""
    from spsr.weights import Need, spec

    explicit = {"lpips_backbone": lpips_backbone or None, "ma_model": ma_model or None}
    return [
        Need(spec(use.key), explicit.get(use.setting), use.option, f"metric {m}")
        for m in metrics
        for use in (METRICS[m].files if m in METRICS else ())
    ]


def conventions_note(scoring: Scoring, metrics: tuple[str, ...] | list[str]) -> str:
    """One line under a table of ``metrics``: the protocol and the conventions it scored with
    (each metric's ``notes``; parts several metrics share once, in rank order)."""
    parts: dict[str, int] = {}
    for m in metrics:
        for rank, text in METRICS[m].notes(scoring):
            parts.setdefault(text, rank)
    ordered = sorted(parts, key=lambda text: parts[text])
    return f"protocol {scoring.label}: " + "; ".join(ordered)


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


#: The layout of a results file's ``settings``: the suite's own fields and its scoring's
#: (:meth:`Scoring.record`), flat, in the order results files have always had.
SETTINGS_LAYOUT = (
    "metrics", "crop_border", "y_channel", "pi_border", "lpips_backbone", "ma_model", "device",
    "protocol", "ssim_downsample", "overrides",
)


@dataclass(frozen=True)
class EvalSettings:
    """How a suite scores: which metrics, under which conventions, with which model files.
    Build it with :meth:`for_protocol`, which resolves the conventions, or read it back from a
    results file with :meth:`from_record`.

    Attributes:
        metrics: names, from :func:`parse_metrics`.
        scoring: the conventions, from :func:`~spsr.metrics.conventions.resolve_protocol`.
        lpips_backbone: AlexNet weights file; None: torchvision's cache.
        ma_model: Ma's ``model.mat``; None: the cache folder.
        device: where LPIPS runs.
    """

    metrics: tuple[str, ...]
    scoring: Scoring
    lpips_backbone: str | None = None
    ma_model: str | None = None
    device: str = "cpu"

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
        return cls(metrics, scoring, lpips_backbone, ma_model, device)

    def record(self) -> dict[str, object]:
        """The ``settings`` of a results file (:data:`SETTINGS_LAYOUT`)."""
        values = {
            "metrics": list(self.metrics),
            "lpips_backbone": self.lpips_backbone,
            "ma_model": self.ma_model,
            "device": self.device,
            **self.scoring.record(),
        }
        return {key: values[key] for key in SETTINGS_LAYOUT}

    @classmethod
    def from_record(cls, settings: Mapping[str, Any]) -> EvalSettings:
        """The settings a results file recorded (what :meth:`record` wrote).

        Raises:
            ConfigError: settings without the scoring conventions, or of an unknown protocol.
        """
        scoring = Scoring.from_record(settings)
        if scoring is None:
            raise ConfigError("the settings do not record the scoring conventions")
        get_protocol(scoring.protocol)  # an unknown protocol fails as on the command line
        return cls(
            metrics=tuple(settings.get("metrics", ())),
            scoring=scoring,
            lpips_backbone=settings.get("lpips_backbone"),
            ma_model=settings.get("ma_model"),
            device=str(settings.get("device", "cpu")),
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
        if settings.scoring.crop_border < 0 or settings.scoring.pi_border < 0:
            raise ConfigError("crop borders must be >= 0")
        self.settings = settings
        from spsr.weights import ensure_files

        random_files = {"alexnet"} if lpips_random_backbone else set()
        needs = [n for n in metric_needs(settings.metrics, settings.lpips_backbone, settings.ma_model)
                 if n.spec.key not in random_files]
        ensure_files(needs)  # fetches what is missing; reports every file it cannot have at once
        self.resources: dict[str, object] = {}
        for name in self._with_dependencies(settings.metrics):
            load = METRICS[name].load
            if load is not None:
                self.resources[name] = load(settings, lpips_random_backbone)

    @staticmethod
    def _with_dependencies(names: Iterable[str]) -> list[str]:
        out: list[str] = []
        todo = list(names)
        while todo:
            name = todo.pop(0)
            if name not in out:
                out.append(name)
                todo.extend(METRICS[name].uses)
        return out

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
        if self.needs_reference and hr is None:
            raise ConfigError("a full-reference metric was asked for without an HR image")
        job = ScoreJob(sr, hr, self.settings, self.resources, METRICS)
        return {m: job.score(m) for m in self.metrics}

    def describe(self) -> dict[str, object]:
        """The settings and conventions, for a results file."""
        scoring = self.settings.scoring
        own = {key for m in METRICS.values() if m.name not in self.metrics for key in m.conventions}
        conventions = {k: v for k, v in CONVENTIONS.items() if k not in own}
        if not scoring.y_channel:
            conventions["y_channel"] = "not used for PSNR/SSIM (--rgb); NIQE/Ma/PI still on Y"
        return {
            "protocol": scoring.describe(),
            "settings": self.settings.record(),
            "conventions": conventions,
            "better": {m: "higher" if METRICS[m].higher_is_better else "lower" for m in self.metrics},
        }
