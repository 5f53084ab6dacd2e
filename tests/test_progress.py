"""Progress bars at 40, 60 and 100 columns: the real progress objects (the training reporter's and
the commands' bar) rendered on a recording console of that width keep the count, then the ETA,
then the rate, on one line; the loss columns go first. Rates read in sensible units."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from spsr.progress import format_rate
from spsr.train.log import ConsoleReporter
from spsr_cli import _common

LOSSES = {"g/pixel": 0.0068, "g/grad_pixel": 0.0123, "g/perceptual": 1.234, "g/gan": 0.0051,
          "d/loss": 0.6931}


def _terminal(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=True, record=True,
                   color_system=None, legacy_windows=False)


def _render(progress, console: Console) -> list[str]:
    console.export_text()  # forget what the live display drew before
    console.print(progress.get_renderable())
    return [line for line in console.export_text().splitlines() if line.strip()]


def _training_bar(width: int):
    console = _terminal(width)
    reporter = ConsoleReporter(console)
    reporter.start(400_000, 20_000, "gan/g")
    progress = reporter._progress
    assert progress is not None
    progress.stop()  # drawn by hand below, not by the live thread
    task = progress.tasks[0]
    clock = [1000.0]
    task._get_time = lambda: clock[0]  # a known rate: 5 iterations per second for 100 s
    progress.get_time = task._get_time  # type: ignore[method-assign]
    for k in range(1, 11):
        clock[0] = 1000.0 + 10 * k
        reporter.step(20_000 + 50 * k, LOSSES)
    return progress, console


@pytest.mark.parametrize("width", [40, 60, 100])
def test_training_progress_fits_the_width_and_keeps_count_eta_rate_in_that_order(width: int) -> None:
    progress, console = _training_bar(width)
    lines = _render(progress, console)
    assert len(lines) == 1, lines  # never wrapped into a second, stray line
    line = lines[0]
    assert len(line) <= width
    assert "20500/400000" in line
    assert "eta " in line and "-:--:--" not in line
    assert "5.00 it/s" in line
    if width == 40:
        assert line.split() == ["20500/400000", "5.00", "it/s", "eta", "21:05:00"]  # as the guide shows
    if width == 100:
        assert "g/pixel 0.0068" in line and "gan/g" in line


def test_a_wide_terminal_shows_every_loss_and_the_bar() -> None:
    progress, console = _training_bar(200)
    line = _render(progress, console)[0]
    assert all(key in line for key in LOSSES) and "━" in line


@pytest.mark.parametrize("width", [40, 60, 100])
def test_the_commands_bar_fits_the_width(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    console = _terminal(width)
    monkeypatch.setattr(_common, "err_console", console)
    bar = _common.progress(False, unit="img")
    task = bar.add_task("scoring esrgan on Set14", total=14, completed=3)
    lines = _render(bar, console)
    assert len(lines) == 1 and len(lines[0]) <= width
    assert "3/14" in lines[0] and "eta" in lines[0]
    assert task == bar.tasks[0].id


@pytest.mark.parametrize(
    ("rate", "unit", "text"),
    [(3.2e6, "P", "3.20 MP/s"), (410_000, "P", "410 kP/s"), (1_700, "P", "1.70 kP/s"),
     (12.0, "P", "12.0 P/s"), (0.004, "img", "0.004 img/s"), (0.0, "it", "-- it/s"),
     (float("nan"), "it", "-- it/s"), (2.5e9, "P", "2.50 GP/s")],
)
def test_rates_read_in_sensible_units(rate: float, unit: str, text: str) -> None:
    assert format_rate(rate, unit) == text
