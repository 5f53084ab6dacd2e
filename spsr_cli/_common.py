"""Helpers shared by every subcommand: consoles, error reporting, progress bars."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar, cast

import typer
import typer.core
from rich.console import Console, ConsoleDimensions
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

# Width given to rendering when the output is not a terminal: wide enough that no line of ours or
# of a table is ever folded, so logs stay one record per line for grep and copy-paste.
PLAIN_WIDTH = 100_000


class AdaptiveConsole(Console):
    """A rich console on a terminal; plain, unwrapped lines when its stream is a file or a pipe.

    The decision is taken at every print, on the stream of that moment (``sys.stdout`` or
    ``sys.stderr`` may be swapped, e.g. by a test runner). Off a terminal rich already drops colour
    and cursor codes; this also stops it from hard-wrapping at 80 columns (or ``$COLUMNS``).
    """

    @property
    def soft_wrap(self) -> bool:
        return self._soft_wrap_default or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap_default = value

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
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

    return cast(F, wrapper)  # functools.wraps keeps the signature Typer reads


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

ENGINE_HELP = ("Inference engine: auto (OpenVINO on CPUs with native bf16, else PyTorch), torch, "
               "openvino or onnxruntime (CPU); one that cannot run falls back to PyTorch.")
#: ``--engine`` of the inference commands (upscale, gradmap, eval), declared once; ``SPSR_ENGINE``
#: sets its default (the test suite pins ``torch`` there).
EngineOption = Annotated[str, typer.Option("--engine", envvar="SPSR_ENGINE", help=ENGINE_HELP)]


SHARD_HELP = ("Process shard K of N (K from 0): every N-th file sorted by path. Default: torchrun's "
              "RANK/WORLD_SIZE, else a SLURM array's SLURM_ARRAY_TASK_ID/COUNT, else all files.")
#: ``--shard`` of ``spsr upscale`` and ``spsr eval``, declared once.
ShardOption = Annotated[str | None, typer.Option("--shard", help=SHARD_HELP, show_default=False)]


def check_engine(engine: str) -> None:
    """An unknown ``--engine`` is a one-line error (before any model is loaded)."""
    from spsr.engines import get_engine

    if engine != "auto":
        get_engine(engine)


def pick_device(device: str) -> str:
    """Resolve ``--device`` with :func:`spsr.devices.resolve_device`: ``auto`` is the first CUDA
    GPU when there is one, else the CPU; an unknown or absent device is a one-line error. Under
    torchrun (``WORLD_SIZE`` > 1) a bare ``auto``/``cuda`` is the GPU of ``LOCAL_RANK``, so each
    shard of ``torchrun --nproc_per_node N spsr upscale`` runs on its own GPU."""
    import os

    from spsr.devices import resolve_device

    local = os.environ.get("LOCAL_RANK", "").strip()
    world = os.environ.get("WORLD_SIZE", "").strip()
    multi = local.isdigit() and world.isdigit() and int(world) > 1
    return resolve_device(device, local_rank=int(local) if multi else None)


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
