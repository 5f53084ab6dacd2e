"""Run a plan: train (or resume) each configuration with the engine, score it, and carry on past
any configuration that fails.

Per row: ``train`` starts a fresh run (leftovers of a run that crashed before its first
checkpoint are set aside), ``resume`` continues ``state/last.pt``, ``evaluate`` / ``reuse`` train
nothing; then the row is scored (:func:`spsr.ablation.scoring.evaluate_row`, which reuses stored
scores). An error in a row is recorded as that row's one-line reason (with the traceback in
``RUN/error.log`` when it is not a user error) and the next row starts. A stop signal (Ctrl-C,
SIGTERM, SIGUSR1: :mod:`spsr.train.signals`) stops the current training at a resumable state, or
the current scoring at its next image, and ends the grid: that row is ``interrupted``, later rows
are ``not run``, and the next run of the same grid carries on.
"""

from __future__ import annotations

import gc
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from spsr.ablation.hooks import AblationHooks
from spsr.ablation.plan import PlannedRun, trained_iterations
from spsr.ablation.scoring import EvalSpec, evaluate_row
from spsr.ablation.states import (
    CONFLICT,
    FAILED,
    INTERRUPTED,
    NOT_RUN,
    OK,
    RESUME,
    TRAIN,
    UNAVAILABLE,
)
from spsr.atomic import write_text_atomic
from spsr.errors import SpsrError, WriteError
from spsr.metrics.registry import MetricSuite
from spsr.metrics.score_folders import DatasetResult
from spsr.run_folder import RunFolder
from spsr.train.engine import Trainer
from spsr.train.signals import StopSignals


@dataclass
class RowResult:
    """What became of one planned configuration.

    Attributes:
        planned: the plan's row.
        status: ``ok`` | ``failed`` (also: the run folder holds another configuration) |
            ``unavailable`` (the engine or the inputs cannot run it) |
            ``interrupted`` | ``not run`` (after an interruption).
        reason: one line for anything but ``ok``.
        results: scores per dataset (``ok`` rows).
        trained: whether this session trained it (fresh or resumed).
        scored: datasets scored this session (0: all scores reused).
        iteration: iterations the evaluated weights were trained for (0 for reference rows).
    """

    planned: PlannedRun
    status: str
    reason: str = ""
    results: list[DatasetResult] = field(default_factory=list)
    trained: bool = False
    scored: int = 0
    iteration: int = 0

    @property
    def name(self) -> str:
        return self.planned.config.name


def one_line(exc: BaseException) -> str:
    """The first line of an error's message, prefixed by its type unless it is a user error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, SpsrError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _set_aside_leftovers(run_dir: Path) -> None:
    """A run folder without a saved state cannot be resumed: keep its log as ``log.failed.jsonl``
    and remove its config so the engine starts afresh there."""
    folder = RunFolder(run_dir)
    if folder.log.is_file():
        os.replace(folder.log, folder.failed_log)
    if folder.config.is_file():
        folder.config.unlink()


def _release_memory() -> None:
    """Give the GPU memory of the last row back before the next one (a full collection costs
    ~0.4 s with torch loaded, so only where memory is scarce)."""
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


class _ScoringStopped(Exception):
    """A stop signal arrived while a row was being scored."""


def _run_row(
    planned: PlannedRun,
    spec: EvalSpec,
    suite: MetricSuite,
    device: str,
    hooks: AblationHooks,
    stop: StopSignals,
) -> RowResult:
    row = RowResult(planned, OK)
    if planned.action in (TRAIN, RESUME):
        assert planned.train_config is not None
        if planned.action == TRAIN:
            _set_aside_leftovers(planned.run_dir)
        result = Trainer(
            planned.train_config,
            planned.run_dir,
            resume=planned.action == RESUME,
            reporter=hooks.reporter(planned),
            monitors=hooks.monitors(planned),
        ).run()
        row.trained = True
        _release_memory()
        if result.interrupted:
            stop.request(result.reason)
            row.status, row.iteration = INTERRUPTED, result.iteration
            row.reason = (
                f"stopped by {result.reason} at iteration {result.iteration} of "
                f"{planned.iterations}; run again to resume"
            )
            return row
    assert planned.eval_source is not None
    planned.run_dir.mkdir(parents=True, exist_ok=True)
    if planned.train_config is not None:
        row.iteration = trained_iterations(planned.run_dir)
    hooks.evaluation_started(planned, sum(len(d.images) for d in spec.datasets))

    def on_image(name: str) -> None:
        hooks.image_scored(planned, name)
        if stop.reason is not None:
            raise _ScoringStopped

    try:
        row.results, row.scored = evaluate_row(
            planned.eval_source,
            spec,
            suite,
            planned.config.name,
            RunFolder(planned.run_dir).eval,
            device=device,
            on_image=on_image,
        )
    except _ScoringStopped:
        row.status = INTERRUPTED
        row.reason = f"stopped by {stop.reason} while scoring; run again to score it"
    _release_memory()
    return row


def run_plan(
    plan: list[PlannedRun],
    spec: EvalSpec,
    suite: MetricSuite,
    device: str = "cpu",
    hooks: AblationHooks | None = None,
    on_update: Callable[[list[RowResult]], object] | None = None,
    stop: StopSignals | None = None,
) -> list[RowResult]:
    """Train and score every runnable row; one failing row does not stop the others.

    Args:
        plan: from :func:`spsr.ablation.plan.plan_grid`.
        spec: the evaluation.
        suite: the metrics, built once (LPIPS / Ma weights load here, before any training).
        device: where evaluation runs (training runs where each row's ``run.device`` says).
        hooks: progress callbacks.
        on_update: called with the rows so far (finished, then not yet run) after each row,
            e.g. to rewrite the table as the grid progresses.
        stop: records what stopped the grid (``stop.reason``: ``SIGTERM``...; None when
            nothing did); installed as the signal handlers for the duration of the call.

    Returns:
        One :class:`RowResult` per planned row, in plan order.
    """
    hooks = hooks or AblationHooks()
    stop = stop if stop is not None else StopSignals()
    rows: list[RowResult] = []
    with stop:
        for index, planned in enumerate(plan, 1):
            if stop.reason is not None:
                row = RowResult(planned, NOT_RUN, "the ablation was interrupted before this row")
            elif not planned.runnable:
                status = FAILED if planned.action == CONFLICT else UNAVAILABLE
                row = RowResult(planned, status, planned.problem)
            else:
                hooks.row_started(index, len(plan), planned)
                try:
                    row = _run_row(planned, spec, suite, device, hooks, stop)
                except KeyboardInterrupt:  # a second Ctrl-C
                    stop.request("SIGINT")
                    row = RowResult(planned, INTERRUPTED, "interrupted; run again to resume")
                except WriteError as exc:  # a full or read-only disk: every next row would fail too
                    raise exc.with_note(
                        f"the grid stopped at {planned.run_dir.name}; finished runs and checkpoints are "
                        "kept, and running the same command again resumes"
                    ) from None
                except Exception as exc:  # noqa: BLE001 - one row's failure must not stop the grid
                    row = RowResult(planned, FAILED, one_line(exc))
                    if not isinstance(exc, SpsrError):
                        _write_traceback(planned.run_dir, exc)
                    _release_memory()
            rows.append(row)
            hooks.row_finished(row)
            if on_update is not None:
                pending = [RowResult(p, NOT_RUN, "not run yet") for p in plan[len(rows) :]]
                on_update(rows + pending)
    return rows


def _write_traceback(run_dir: Path, exc: BaseException) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        write_text_atomic(RunFolder(run_dir).error_log, text)
    except OSError:
        pass
