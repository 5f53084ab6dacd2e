"""Helpers shared by every subcommand: consoles, error reporting, progress bars."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
import typer.core
from rich.console import Console, ConsoleDimensions
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from spsr.errors import SpsrError

# Width given to rendering when the output is not a terminal: wide enough that no line of ours or
# of a table is ever folded, so logs stay one record per line for grep and copy-paste.
PLAIN_WIDTH = 100_000


class AdaptiveConsole(Console):
    """A rich console on a terminal; plain, unwrapped lines when its stream is a file or a pipe.

    The decision is taken at every print, on the stream of that moment (``sys.stdout`` or
    ``sys.stderr`` may be swapped, e.g. by a test runner). Off a terminal rich already drops colour
    and cursor codes; this also stops it from hard-wrapping at 80 columns (or ``$COLUMNS``).
    """

    @property  # type: ignore[override]
    def soft_wrap(self) -> bool:
        return self._soft_wrap_default or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap_default = value

    @property  # type: ignore[override]
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self.is_terminal:
            return size
        return ConsoleDimensions(PLAIN_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = AdaptiveConsole()
err_console = AdaptiveConsole(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one clear error line to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn user errors into one line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpsrError as exc:
            raise fail(str(exc)) from None
        except FileNotFoundError as exc:
            raise fail(f"file not found: {exc.filename or exc}") from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

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


def _flag_without_placeholder(param: Any) -> Any:
    if isinstance(param, typer.core.TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""
    return param


class SpsrGroup(typer.core.TyperGroup):
    """The command group (``spsr``, ``spsr user-study-sheet``): flags without ``<bool>``."""

    def get_params(self, ctx: Any) -> list[Any]:
        return [_flag_without_placeholder(p) for p in super().get_params(ctx)]


class SpsrCommand(typer.core.TyperCommand):
    """A subcommand whose help reads like a conventional Unix one.

    The usage line names arguments ``INPUTS [OUTPUT]`` (required bare, optional in brackets, a
    list with ``...``), not ``{inputs}``; on/off flags show no ``<bool>`` value placeholder, since
    they take no value.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument) and param.metavar is None:
                param.metavar = (param.name or "").upper()

    def get_params(self, ctx: Any) -> list[Any]:
        return [_flag_without_placeholder(p) for p in super().get_params(ctx)]

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                name = param.metavar or (param.name or "").upper()
                if param.nargs != 1:
                    name += "..."
                pieces.append(name if param.required else f"[{name}]")
        return pieces


DEVICE_HELP = "auto (a CUDA GPU if there is one, else the CPU), cpu, cuda or cuda:N."


def pick_device(device: str) -> str:
    """Resolve ``--device``: ``auto`` is the first CUDA GPU when there is one, else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise fail(f"--device {device} asked for, but no CUDA GPU is available")
    return device


def is_tty() -> bool:
    return sys.stderr.isatty()
