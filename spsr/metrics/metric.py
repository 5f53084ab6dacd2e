"""What a metric is: :class:`Metric`, the object every metric module declares, and
:class:`ScoreJob`, what its compute function reads.

A metric module (one per metric, :mod:`spsr.metrics.builtin`) declares its name, direction, the
files it loads, its conventions (the text written into results files and its part of the line
under a table) and its compute function in one :class:`Metric`; the registry
(:mod:`spsr.metrics.registry`) lists the modules. Declarations import nothing heavy: a compute or
load function imports its implementation when it first runs, so ``--help`` texts can read the
registry without importing torch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from spsr.metrics.conventions import luminance, shave

if TYPE_CHECKING:
    from spsr.metrics.conventions import Scoring
    from spsr.metrics.registry import EvalSettings


@dataclass(frozen=True)
class FileUse:
    """A model file a metric loads.

    Attributes:
        key: the file in :data:`spsr.weights.SPECS` (``alexnet``, ``ma-model``).
        setting: the :class:`~spsr.metrics.registry.EvalSettings` field that may name the file
            instead of the cache (``lpips_backbone``, ``ma_model``).
        option: the command-line option that sets it, for messages.
    """

    key: str
    setting: str
    option: str


@dataclass(frozen=True)
class Metric:
    """One metric, as its module declares it.

    Attributes:
        name: the ``--metrics`` name.
        label: column header.
        higher_is_better: direction.
        needs_reference: compares against the HR image (full-reference).
        decimals: digits the papers print.
        compute: ``ScoreJob → float``, the score of the job's SR image.
        conventions: how it is computed, by key, as written into results files
            (``conventions`` of ``spsr eval --json``), in recording order.
        notes: ``Scoring → ((rank, text), ...)``: its parts of the one line under a table (parts
            that several metrics share are printed once, in rank order).
        files: the model files it loads.
        load: ``(settings, random_backbone) → resource`` loaded once per suite (the LPIPS
            network, Ma's forests), read back with :meth:`ScoreJob.resource`; None: nothing.
        uses: other metrics whose scores or resources it uses (PI: Ma and NIQE).
        help: words after its name in ``--metrics`` help (empty: the name says enough).
    """

    name: str
    label: str
    higher_is_better: bool
    needs_reference: bool
    decimals: int
    compute: Callable[[ScoreJob], float]
    conventions: Mapping[str, str] = field(default_factory=dict)
    notes: Callable[[Scoring], tuple[tuple[int, str], ...]] = lambda scoring: ()
    files: tuple[FileUse, ...] = ()
    load: Callable[[Any, bool], object] | None = None
    uses: tuple[str, ...] = ()
    help: str = ""


class ScoreJob:
    """One SR image being scored by a suite: the images, the settings, the loaded resources and
    the scores computed so far (a metric that uses another's score reads it with :meth:`score`).

    Args:
        sr: ``(H, W[, 3])`` ``uint8``.
        hr: the reference of the same size, or None.
        settings: the suite's :class:`~spsr.metrics.registry.EvalSettings`.
        resources: what the metrics' ``load`` functions loaded, by metric name.
        metrics: every registered metric by name.
    """

    def __init__(self, sr: np.ndarray, hr: np.ndarray | None, settings: EvalSettings,
                 resources: Mapping[str, object], metrics: Mapping[str, Metric]) -> None:
        self.sr, self.settings = sr, settings
        self._hr = hr
        self._resources = resources
        self._metrics = metrics
        self._scores: dict[str, float] = {}

    @property
    def scoring(self) -> Scoring:
        """The conventions to score under (borders, channel, SSIM downsampling): the suite's
        :attr:`EvalSettings.scoring <spsr.metrics.registry.EvalSettings.scoring>`."""
        return self.settings.scoring

    @property
    def hr(self) -> np.ndarray:
        """The reference image (a full-reference metric is only run with one)."""
        assert self._hr is not None, "a full-reference metric was run without an HR image"
        return self._hr

    @functools.cached_property
    def y(self) -> np.ndarray:
        """The no-reference metrics' input: the evaluation Y of the SR image with
        ``pi_border`` shaved (computed once for NIQE, Ma and PI)."""
        return shave(luminance(self.sr), self.scoring.pi_border)

    def resource(self, name: str) -> Any:
        """What metric ``name``'s ``load`` loaded for this suite."""
        return self._resources[name]

    def score(self, name: str) -> float:
        """The score of metric ``name`` on this image (computed once)."""
        if name not in self._scores:
            self._scores[name] = self._metrics[name].compute(self)
        return self._scores[name]
