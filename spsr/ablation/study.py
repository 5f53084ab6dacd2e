"""An ablation study from start to finish, as ``spsr ablate`` runs it: plan every row, list the
weights files it needs, train and score, and assemble the table.

The steps, each a function the command line calls in turn::

    study = plan_study(grid, out, inputs, metrics=None, hr_dirs=["Set14/HR"])
    missing = missing_weights(study)                 # what --dry-run lists
    rows = run_plan(study.plan, study.eval_spec, suite, study.device)   # spsr.ablation.runner
    table = study_table(study, rows, suite.describe())

Only :func:`plan_study` reads run folders; nothing here trains or writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spsr.ablation.grid import DEFAULT_SLOT, AblationGrid
from spsr.ablation.plan import AblationInputs, PlannedRun, grid_scale, plan_grid
from spsr.ablation.scoring import EvalDataset, EvalSpec, eval_datasets, eval_key
from spsr.ablation.states import RESUME, TRAIN
from spsr.devices import resolve_device
from spsr.errors import ConfigError, SpsrError
from spsr.metrics.registry import EvalSettings, parse_metrics

if TYPE_CHECKING:
    from spsr.ablation.runner import RowResult
    from spsr.ablation.table import AblationTable
    from spsr.weights import Need


@dataclass
class StudyPlan:
    """Everything a study runs with, decided before anything trains.

    Attributes:
        grid: the configurations.
        out: the study's folder (table files, ``runs/<configuration>``).
        inputs: what every row shares (:class:`spsr.ablation.plan.AblationInputs`).
        columns: the table's metric columns, in the order asked for.
        datasets: the HR datasets scored.
        settings: the metrics and their conventions.
        eval_spec: how each row is scored.
        plan: one planned run per row.
        scale: the models' scale.
        device: where scoring runs.
    """

    grid: AblationGrid
    out: Path
    inputs: AblationInputs
    columns: tuple[str, ...]
    datasets: tuple[EvalDataset, ...]
    settings: EvalSettings
    eval_spec: EvalSpec
    plan: list[PlannedRun]
    scale: int
    device: str


def metric_columns(spec: str) -> tuple[str, ...]:
    """``--metrics`` in the order given (``all``: every metric).

    Raises:
        ConfigError: an unknown metric.
    """
    from spsr.metrics.registry import METRICS

    parse_metrics(spec)  # validates
    names = [n.strip().lower() for n in spec.replace(" ", ",").split(",") if n.strip()]
    if "all" in names:
        return tuple(METRICS)
    return tuple(dict.fromkeys(names))


def check_sources(inputs: AblationInputs) -> None:
    """Every init resolves to a weights file and every NSE run exists, before anything trains.

    Raises:
        ConfigError: naming the ``--init`` / ``--nse`` slot that does not.
    """
    from spsr.checkpoints import resolve_weights

    for name, source in inputs.inits.items():
        try:
            resolve_weights(source)
        except (SpsrError, OSError) as exc:
            flag = "--init" if name == DEFAULT_SLOT else f"--init {name}=..."
            raise ConfigError(f"{flag}: {exc}") from None
    for name, source in inputs.nses.items():
        if not Path(source).exists():
            flag = "--nse " if name == DEFAULT_SLOT else f"--nse {name}="
            raise ConfigError(f"{flag}{source}: not found (give a run of spsr pretrain-nse)")


def plan_study(
    grid: AblationGrid,
    out: str | os.PathLike[str],
    inputs: AblationInputs,
    *,
    metrics: str | None = None,
    hr_dirs: Sequence[str | os.PathLike[str]] = (),
    protocol: str = "spsr",
    conventions: Mapping[str, Any] | None = None,
    device: str = "auto",
    tile: int = 256,
    precision: str = "auto",
) -> StudyPlan:
    """Plan every row and decide how they are scored.

    Args:
        grid: the configurations.
        out: the study's folder.
        inputs: data, budget, inits, NSEs and common overrides.
        metrics: the table's columns (``--metrics``); None: the grid's own.
        hr_dirs: HR dataset folders to score on.
        protocol: the scoring conventions (``spsr`` | ``basicsr``).
        conventions: single conventions that override the protocol's (keyword arguments of
            :meth:`spsr.metrics.registry.EvalSettings.for_protocol`: ``crop_border``,
            ``y_channel``, ``pi_border``, ``ssim_downsample``, ``lpips_backbone``, ``ma_model``).
        device: where scoring runs (``auto`` | ``cpu`` | ``cuda[:N]``).
        tile: scoring's tile size in LR pixels (0: whole images).
        precision: scoring precision.

    Raises:
        ConfigError: unknown metrics, datasets that cannot be read, rows of different scales.
    """
    columns = metric_columns(metrics or ",".join(grid.metrics))
    datasets = eval_datasets(hr_dirs)
    plan = plan_grid(grid, out, inputs)
    scale = grid_scale(plan)
    eval_device = resolve_device(device)
    settings = EvalSettings.for_protocol(
        parse_metrics(",".join(columns)), scale, protocol, device=eval_device,
        **dict(conventions or {}),
    )
    spec = EvalSpec(datasets, settings, scale, tile, precision)
    if datasets:  # with the evaluation's fingerprint: rows with current scores reuse them
        plan = plan_grid(grid, out, inputs, eval_key(spec))
    return StudyPlan(grid, Path(out), inputs, columns, datasets, settings, spec, plan, scale,
                     eval_device)


def training_weights(plan: list[PlannedRun]) -> dict[int, list[Need]]:
    """The ImageNet weights each row that trains will load, by row index."""
    from spsr.train.needs import training_needs

    return {
        i: training_needs(p.train_config)
        for i, p in enumerate(plan)
        if p.train_config is not None and p.action in (TRAIN, RESUME)
    }


def metric_weights(study: StudyPlan) -> list[Need]:
    """The weights files the metrics load."""
    from spsr.metrics.registry import metric_needs

    s = study.settings
    return metric_needs(s.metrics, s.lpips_backbone, s.ma_model)


def missing_weights(study: StudyPlan) -> tuple[dict[int, list[str]], list[str]]:
    """Weights files not in the cache: by row index (rows missing none left out), and the
    metrics'; each as ``filename (purpose)``."""
    from spsr.weights import missing

    def names(needs: list[Need]) -> list[str]:
        return [f"{n.spec.filename} ({n.purpose})" for n in missing(needs)]

    rows = {i: names(needs) for i, needs in training_weights(study.plan).items()}
    return {i: a for i, a in rows.items() if a}, names(metric_weights(study))


def study_table(study: StudyPlan, rows: list[RowResult], describe: dict[str, Any]) -> AblationTable:
    """The table of ``rows`` (finished or not yet run), with the study's provenance."""
    from spsr.ablation.table import AblationTable, order_metrics

    grid, inputs = study.grid, study.inputs
    return AblationTable(
        title=grid.title,
        grid=grid.name,
        source=grid.source,
        datasets=[d.name for d in study.datasets],
        metrics=order_metrics(study.columns, study.settings.metrics),
        rows=rows,
        describe=describe,
        info={
            "scale": study.scale,
            "iterations": inputs.iterations,
            "data": inputs.data,
            "init": inputs.inits.get("default"),
            "inits": dict(inputs.inits),
            "nses": dict(inputs.nses),
            "hr_dirs": [str(d.hr_dir) for d in study.datasets],
            "overrides": dict(inputs.overrides),
        },
    )
