"""Helpers shared by every subcommand: consoles, error reporting, progress bars."""

from __future__ import annotations

import contextlib
import functools
import inspect
import time
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
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from spsr.errors import SpsrError, as_write_error, user_message
from spsr.progress import (
    BAR,
    COUNT,
    DESCRIPTION,
    DETAIL,
    ELAPSED,
    ETA,
    RATE,
    EtaColumn,
    FittingProgress,
    RateColumn,
)

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
        except (typer.Exit, typer.Abort):  # click's are RuntimeErrors: already said
            raise
        except (OSError, RuntimeError) as exc:
            # a full / read-only / forbidden / size-limited output, wherever it was written
            failed = as_write_error(exc, getattr(exc, "filename", None) or "the output")
            if failed is not None:
                raise fail(str(failed)) from None
            if type(exc).__name__ != "OutOfMemoryError":  # torch.cuda's, without importing torch
                raise
            first = (str(exc).splitlines() or ["CUDA out of memory"])[0]
            raise fail(
                f"out of GPU memory ({first[:160]}); lower --batch-size, or --tile and --batch, or "
                "use --amp bf16 / --precision bf16; a training run's last checkpoint is intact"
            ) from None

    return cast(F, wrapper)  # functools.wraps keeps the signature Typer reads


def progress(quiet: bool = False, *extra_columns: Any, unit: str = "it") -> Progress:
    """A rich progress bar with count, ETA and rate (in ``unit``/s); off a terminal or with quiet,
    nothing. As the terminal narrows the bar keeps, in this order, the count, the ETA and the
    rate (:class:`spsr.progress.FittingProgress`); ``extra_columns`` go first."""
    return FittingProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        *extra_columns,
        TimeElapsedColumn(),
        EtaColumn(),
        priorities=[DESCRIPTION, BAR, COUNT, RATE, *([DETAIL] * len(extra_columns)), ELAPSED, ETA],
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=False,
    )


# Tile progress appears once an image has taken this long (seconds), so quick images stay quiet;
# off a terminal a plain line is printed at most every PLAIN_TILE_EVERY seconds.
TILE_PROGRESS_AFTER = 1.0
PLAIN_TILE_EVERY = 5.0


class TileProgress:
    """Progress within one image (``spsr upscale``, ``spsr eval``): a second bar on a terminal,
    periodic plain lines otherwise. ``update`` is the ``on_tiles(done, total)`` callback of
    :class:`spsr.infer.tiled.TiledUpscaler`."""

    def __init__(self, bar: Progress, plain: bool) -> None:
        self.bar = bar
        self.plain = plain
        self.task: TaskID | None = None
        self.name = ""
        self.start = 0.0
        self.last_line = 0.0

    def begin(self, name: str) -> None:
        self.name, self.start, self.last_line = name, time.perf_counter(), 0.0
        self.task = self.bar.add_task(f"  {name}: tiles", total=None, visible=False, rate="",
                                      unit="tiles")

    def update(self, done: int, total: int) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 and done else 0.0
        text = f"{rate:.2f} tiles/s" if rate else ""
        visible = elapsed >= TILE_PROGRESS_AFTER and done < total
        if self.task is not None:
            self.bar.update(self.task, completed=done, total=total, rate=text, visible=visible)
        if self.plain and visible and now - self.last_line >= PLAIN_TILE_EVERY:
            self.last_line = now
            eta = f", ETA {(total - done) / rate:.0f} s" if rate else ""
            err_console.print(f"  {self.name}: tiles {done}/{total}{', ' + text if text else ''}{eta}",
                              highlight=False)

    def end(self) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None


def _flag_without_placeholder(param: Any) -> Any:
    if isinstance(param, typer.core.TyperOption) and param.is_flag and param.metavar is None:
        param.metavar = ""
    return param


class SpsrGroup(typer.core.TyperGroup):
    """The command group (``spsr``, ``spsr user-study-sheet``): flags without ``<bool>``."""

    def get_params(self, ctx: Any) -> list[Any]:
        return [_flag_without_placeholder(p) for p in super().get_params(ctx)]


def reflow(help_text: str) -> str:
    """A docstring's prose paragraphs as one line each, so that rich wraps them at the terminal's
    width: in rich markup mode Typer keeps the source's line breaks, which cut sentences in the
    middle of a line (in ``spsr --help``'s command list and in a command's description).
    Paragraphs with an indented line or a bullet (examples, lists) are left as they are."""
    paragraphs = inspect.cleandoc(help_text).split("\n\n")
    out = []
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        keep = paragraph.startswith("\b") or any(
            line[:1].isspace() or line.lstrip().startswith(("- ", "* ", "• ")) for line in lines
        )
        out.append(paragraph if keep else " ".join(paragraph.split()))
    return "\n\n".join(out)


class SpsrCommand(typer.core.TyperCommand):
    """A subcommand whose help reads like a conventional Unix one.

    The usage line names arguments ``INPUTS [OUTPUT]`` (required bare, optional in brackets, a
    list with ``...``), not ``{inputs}``; on/off flags show no ``<bool>`` value placeholder, since
    they take no value.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = reflow(self.help)
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


def complete(*values: str) -> Callable[[str], list[str]]:
    """Shell completion of an option with a fixed set of values (Typer's ``autocompletion``):
    the values that start with what was typed."""

    def complete_value(incomplete: str) -> list[str]:
        return [v for v in values if v.startswith(incomplete)]

    return complete_value


# Fixed value sets, spelled here so that completion never imports torch (tests/cli/test_cli_edges.py
# checks them against the library's own lists).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AMP_MODES = ("auto", "off", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "cuda:0")
PROTOCOLS = ("spsr", "basicsr")

DEVICE_HELP = "auto (a CUDA GPU if there is one, else the CPU), cpu, cuda or cuda:N."

ENGINE_HELP = ("Inference engine: auto (PyTorch on GPUs, OpenVINO on CPUs with native bf16, on other "
               "CPUs the engine measured fastest on one tile of this model, cached per machine), torch, "
               "openvino or onnxruntime (CPU); one that cannot run falls back to PyTorch.")
#: ``--engine`` of the inference commands (upscale, gradmap, eval), declared once; ``SPSR_ENGINE``
#: sets its default (the test suite pins ``torch`` there).
EngineOption = Annotated[str, typer.Option("--engine", envvar="SPSR_ENGINE", help=ENGINE_HELP)]
ENGINE_RETUNE_HELP = ("With --engine auto on a CPU without native bf16: measure the engines again "
                      "instead of using the choice cached for this machine and model.")
#: ``--engine-retune`` of the inference commands, declared once beside ``--engine``.
EngineRetuneOption = Annotated[bool, typer.Option("--engine-retune", help=ENGINE_RETUNE_HELP)]


SHARD_HELP = ("Process shard K of N (K from 0): every N-th file sorted by path. Default: torchrun's "
              "RANK/WORLD_SIZE, else a SLURM array's SLURM_ARRAY_TASK_ID/COUNT, else all files.")
#: ``--shard`` of ``spsr upscale`` and ``spsr eval``, declared once.
ShardOption = Annotated[str | None, typer.Option("--shard", help=SHARD_HELP, show_default=False)]

#: ``--device`` of the inference commands (upscale, gradmap, eval), declared once.
DeviceOption = Annotated[str, typer.Option("--device", help=DEVICE_HELP, autocompletion=complete(*DEVICES))]
#: ``--model-scale`` of upscale, gradmap and export (eval adds a sentence to its help).
ModelScaleOption = Annotated[int | None, typer.Option(
    "--model-scale", min=1, help=MODEL_SCALE_HELP, show_default=False)]


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


@contextlib.contextmanager
def model_fetching(quiet: bool = False, offline: bool = False) -> Iterator[None]:
    """Within the block, model files the library fetches (:mod:`spsr.weights`) show a download bar
    on a terminal and one line on stderr each (what, from where, to where).

    Args:
        quiet: no bar (the line is still printed: it says what was written where).
        offline: ``--offline``: forbid network access (``SPSR_OFFLINE`` decides otherwise).
    """
    from spsr.weights import fetch_settings

    bar = FittingProgress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        priorities=[DESCRIPTION, BAR, COUNT, RATE, ETA],
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
