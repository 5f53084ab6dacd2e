"""Progress bars that keep what matters at any terminal width, and readable throughput units.

:class:`FittingProgress` is a :class:`rich.progress.Progress` whose columns carry a *priority*:
each time it is drawn, the columns are measured and the least important ones that do not fit the
console's width are left out, so a line never wraps (a wrapped live line leaves stray fragments
behind at every refresh). Every long command draws its bar with it (training, ``spsr eval``,
``prepare-data``...): the count, the ETA and the rate are kept in that order; loss columns go
first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from rich.measure import Measurement
from rich.progress import BarColumn, Progress, ProgressColumn, Task
from rich.table import Column, Table
from rich.text import Text

# Priorities, lower = kept longer.
COUNT, ETA, RATE, DESCRIPTION, BAR, ELAPSED, DETAIL, LOSSES = 1, 2, 3, 4, 5, 6, 7, 8

_BAR_MIN, _BAR_MAX = 10, 40
_DETAIL_MIN = 16  # narrower than this, a cut detail column says nothing


def format_rate(per_second: float, unit: str) -> str:
    """``3.2 MP/s``, ``410 kP/s``, ``12 P/s`` (``unit`` ``P`` for pixels, ``it``...): SI prefixes,
    three significant digits, so small rates never read as ``0.00``."""
    if not math.isfinite(per_second) or per_second <= 0:
        return f"-- {unit}/s"
    factor, prefix = next(
        ((f, p) for f, p in ((1e9, "G"), (1e6, "M"), (1e3, "k")) if per_second >= f), (1.0, "")
    )
    value = per_second / factor
    if value >= 100:
        text = f"{value:.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    elif value >= 0.01 or prefix:
        text = f"{value:.2f}"
    else:
        text = f"{value:.2g}"
    return f"{text} {prefix}{unit}/s"


class EtaColumn(ProgressColumn):
    """``eta 1:02:03`` (``eta -:--:--`` until a rate is known)."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        remaining = task.time_remaining
        if task.finished:
            remaining = 0
        if remaining is None:
            return Text("eta -:--:--", style="progress.remaining")
        minutes, seconds = divmod(int(remaining), 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"eta {hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


class RateColumn(ProgressColumn):
    """The task's speed as ``12.3 it/s`` (or in any unit, with SI prefixes); a task's own
    ``unit`` field (e.g. ``tiles`` for a tile bar under an image bar) wins."""

    def __init__(self, unit: str = "it") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = str(task.fields.get("unit", self.unit))
        return Text(format_rate(speed or 0.0, unit), style="progress.data.speed")


class FittingProgress(Progress):
    """A rich progress display that drops its least important columns to fit the width.

    Args:
        columns: the columns, in display order.
        priorities: one per column, lower kept longer (:data:`COUNT`, :data:`ETA`, :data:`RATE`,
            ... :data:`LOSSES`). A :class:`rich.progress.BarColumn` takes the width left over
            (10 to 40 cells).
        kwargs: as :class:`rich.progress.Progress`.
    """

    def __init__(self, *columns: ProgressColumn, priorities: Sequence[int], **kwargs: Any) -> None:
        if len(priorities) != len(columns):
            raise ValueError("one priority per column")
        self.priorities = list(priorities)  # set first: rich draws once while constructing
        super().__init__(*columns, **kwargs)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        visible = [t for t in tasks if t.visible]
        columns = list(self.columns)
        if not hasattr(self, "live"):  # the first draw, inside rich's constructor
            return Table.grid()
        width = self.console.width
        options = self.console.options.update(width=width)
        cells: list[list[Any]] = []
        needs: list[int] = []
        for column in columns:
            if isinstance(column, BarColumn):
                cells.append([])
                needs.append(_BAR_MIN)
                continue
            row = [column.format(task=t) if isinstance(column, str) else column(t) for t in visible]
            cells.append(row)
            needs.append(max((Measurement.get(self.console, options, c).maximum for c in row), default=0))
        chosen: set[int] = set()
        used = 0
        for i in sorted(range(len(columns)), key=lambda i: (self.priorities[i], i)):
            cost = needs[i] + (1 if chosen else 0)  # one cell of padding between columns
            if needs[i] and used + cost <= width:
                chosen.add(i)
                used += cost
        # A detail column (losses) that did not fit whole gets what is left, cut with an ellipsis.
        limits: dict[int, int] = {}
        for i in range(len(columns)):
            room = width - used - 1
            if i not in chosen and self.priorities[i] >= DETAIL and needs[i] and room >= _DETAIL_MIN:
                chosen.add(i)
                limits[i] = room
                used += room + 1
        keep = sorted(chosen)
        table = Table.grid(
            *(Column(no_wrap=True, overflow="ellipsis", max_width=limits.get(i)) for i in keep),
            padding=(0, 1),
        )
        for row_index, task in enumerate(visible):
            row = []
            for i in keep:
                column = columns[i]
                if isinstance(column, BarColumn):
                    column.bar_width = min(_BAR_MAX, _BAR_MIN + width - used)
                    row.append(column(task))
                else:
                    row.append(cells[i][row_index])
            table.add_row(*row)
        return table
