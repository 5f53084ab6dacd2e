"""Progress callbacks of :func:`spsr.ablation.runner.run_plan` (a light module: the command line
subclasses it without importing torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spsr.ablation.plan import PlannedRun
    from spsr.ablation.runner import RowResult
    from spsr.train.log import Reporter
    from spsr.train.monitor import Monitor


class AblationHooks:
    """Progress callbacks of :func:`spsr.ablation.runner.run_plan`; this base class does nothing."""

    def row_started(self, index: int, total: int, planned: PlannedRun) -> None:
        """Row ``index`` (1-based) of ``total`` begins."""

    def reporter(self, planned: PlannedRun) -> Reporter:
        """The training progress reporter of a row (silent by default)."""
        from spsr.train.log import Reporter

        return Reporter()

    def monitors(self, planned: PlannedRun) -> list[Monitor]:
        """The run monitors of a row's training (TensorBoard, W&B; none by default)."""
        return []

    def evaluation_started(self, planned: PlannedRun, images: int) -> None:
        """Scoring of a row begins (``images``: at most this many will be scored)."""

    def image_scored(self, planned: PlannedRun, name: str) -> None:
        """One image of a row was upscaled and scored."""

    def row_finished(self, row: RowResult) -> None:
        """A row ended (any status)."""
