"""Helpers shared by every subcommand: consoles, error reporting, progress bars."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from spsr.errors import SpsrError, user_message

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def warn(message: str) -> None:
    """One warning line on stderr (things a user should know, e.g. guessed hyperparameters)."""
    err_console.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


MODEL_SCALE_HELP = ("The scale the weights are for, where their keys cannot tell (old-layout ESRGAN "
                    "and SPSR x2/x3 look alike); checked against what the keys do tell.")


def guarded(fn: F) -> F:
    """Turn user errors into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpsrError as exc:
            raise fail(user_message(exc)) from None
        except FileNotFoundError as exc:
            raise fail(f"file not found: {exc.filename or exc}") from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except RuntimeError as exc:
            if type(exc).__name__ != "OutOfMemoryError":  # torch.cuda's, without importing torch
                raise
            first = (str(exc).splitlines() or ["CUDA out of memory"])[0]
            raise fail(
                f"out of GPU memory ({first[:160]}); lower --batch-size, or --tile and --batch, or "
                "use --amp bf16 / --precision bf16; a training run's last checkpoint is intact"
            ) from None

    return wrapper  # type: ignore[return-value]


def progress(quiet: bool = False, *extra_columns: Any) -> Progress:
    """A rich progress bar with rate and ETA; plain when not on a terminal, silent with quiet."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=False,
    )


def is_tty() -> bool:
    return sys.stderr.isatty()


@contextlib.contextmanager
def model_fetching(quiet: bool = False, offline: bool = False) -> Iterator[None]:
    """Within the block, model files the library fetches (:mod:`spsr.weights`) show a download bar
    on a terminal and one line on stderr each (what, from where, to where).

    Args:
        quiet: no bar (the line is still printed: it says what was written where).
        offline: ``--offline``: forbid network access (``SPSR_OFFLINE`` decides otherwise).
    """
    from spsr.weights import fetch_settings

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def on_progress(spec: Any, done: int, total: int | None) -> None:
        if spec.key not in tasks:
            bar.start()
            tasks[spec.key] = bar.add_task(f"fetching {spec.filename}", total=total)
        bar.update(tasks[spec.key], completed=done, total=total)

    def on_note(line: str) -> None:
        err_console.print(line, highlight=False, soft_wrap=True)

    with fetch_settings(offline=True if offline else None, on_progress=on_progress, on_note=on_note):
        try:
            yield
        finally:
            bar.stop()
