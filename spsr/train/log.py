"""Training logs: a JSON-lines file of every logged loss and metric, and progress reporters.

``RUN/log.jsonl`` gets one JSON object per line, appended and flushed as it happens (a resumed run
appends to it). Every record has ``kind`` and ``time`` (Unix seconds); the kinds are:

* ``start``: ``iteration`` (where this session starts), ``iterations``, ``world_size``, ``backend``,
  ``batch_per_process``, ``device``, ``amp``, ``resumed``, ``threads`` (intra-op threads of the
  training process), ``data_workers``;
* ``train``: ``iteration``, averaged losses since the last record (``g/pixel``, ``d/loss``...;
  weighted as they enter the total), ``lr/<optimizer>``, ``it_per_s``, ``eta_s``, ``skipped``;
* ``val``: ``iteration``, ``psnr``, ``ssim``, ``images``, ``best`` (bool), ``seconds``;
* ``checkpoint``: ``iteration``, ``path``;
* ``warning``: ``iteration``, ``message`` (e.g. a skipped non-finite step);
* ``end``: ``iteration``, ``reason`` (``finished``, ``SIGINT``, ``SIGTERM``, ``diverged``).

Reporters show progress while training. :class:`Reporter` is silent (the library default);
:class:`ConsoleReporter` draws a rich progress bar with losses, it/s and ETA on a terminal and
prints plain lines (one per log record) otherwise. The library never prints on its own: the
command line passes a ``ConsoleReporter``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from spsr.errors import WriteError, write_errno
from spsr.progress import (
    BAR,
    COUNT,
    DESCRIPTION,
    ELAPSED,
    ETA,
    LOSSES,
    RATE,
    EtaColumn,
    FittingProgress,
    RateColumn,
)
from spsr.run_folder import LOG_FILE


class JsonLinesLog:
    """Append-only JSON-lines log; a no-op when ``enabled`` is false (ranks other than 0).

    Args:
        path: the ``log.jsonl`` file.
        enabled: whether this process writes.
    """

    def __init__(self, path: str | os.PathLike[str], enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._fh = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record (``time`` added) and flush; returns the record written."""
        record = {"time": round(time.time(), 3), **record}
        if self._fh is not None:
            try:
                self._fh.write(json.dumps(record, default=_json_default, allow_nan=True) + "\n")
                self._fh.flush()
            except OSError as exc:
                code = write_errno(exc)
                if code is None:
                    raise
                fh, self._fh = self._fh, None  # its buffer cannot be flushed: drop it
                with contextlib.suppress(OSError):
                    fh.close()
                raise WriteError(self.path, code) from None
        return record

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_log(path: str | os.PathLike[str], kind: str | None = None) -> list[dict[str, Any]]:
    """Records of a ``log.jsonl`` (a run folder or the file), optionally of one ``kind``."""
    path = Path(path)
    if path.is_dir():
        path = path / LOG_FILE
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                rec = json.loads(line)
                if kind is None or rec.get("kind") == kind:
                    records.append(rec)
    return records


def format_duration(seconds: float) -> str:
    """``3d 02:11:05`` / ``02:11:05``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{h:02d}:{m:02d}:{s:02d}"


def format_values(values: dict[str, Any], limit: int = 8) -> str:
    """``g/pixel 0.0123  d/loss 0.693`` from a record's float values."""
    parts = []
    for key, value in values.items():
        if isinstance(value, float) and "/" in key and not key.startswith("lr/"):
            parts.append(f"{key} {value:.4g}")
    return "  ".join(parts[:limit])


class Reporter:
    """Progress reporting interface; this base class is silent."""

    def start(self, total: int, first: int, description: str) -> None:
        """Training of iterations ``first+1 .. total`` begins."""

    def step(self, iteration: int, values: dict[str, float]) -> None:
        """Iteration ``iteration`` finished with these (per-process) losses."""

    def record(self, record: dict[str, Any]) -> None:
        """A record was written to the log (train averages, validation, events)."""

    def warn(self, message: str) -> None:
        """Something the user should know (e.g. a skipped non-finite step)."""

    def note(self, message: str) -> None:
        """A setting the run chose by itself (e.g. its CPU thread counts), said once."""

    def close(self) -> None:
        """Training ended."""


class ConsoleReporter(Reporter):
    """Rich progress on a terminal; one plain line per log record elsewhere.

    Args:
        console: where to draw (the command line's stderr console).
        quiet: print nothing but warnings.
    """

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self._progress: Progress | None = None
        self._task: Any = None
        self._total = 0
        self._t0 = time.monotonic()
        self._first = 0

    def start(self, total: int, first: int, description: str) -> None:
        self._total, self._first, self._t0 = total, first, time.monotonic()
        if not self.live:
            if not self.quiet:
                self.console.print(f"{description}: iterations {first + 1}..{total}", highlight=False)
            return
        # Kept in this order as the terminal narrows: count, ETA, rate; the losses go first.
        self._progress = FittingProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn("it"),
            TimeElapsedColumn(),
            EtaColumn(),
            TextColumn("{task.fields[losses]}"),
            priorities=[DESCRIPTION, BAR, COUNT, RATE, ELAPSED, ETA, LOSSES],
            console=self.console,
            transient=False,
            refresh_per_second=4,
            speed_estimate_period=120.0,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=first, losses="")

    def step(self, iteration: int, values: dict[str, float]) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=iteration, losses=format_values(values))

    def record(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        it = record.get("iteration", 0)
        if kind == "train":
            if self.live or self.quiet:
                return
            rate = record.get("it_per_s", 0.0)
            line = (
                f"iter {it}/{self._total}  {100.0 * it / max(1, self._total):5.1f}%  "
                f"{rate:.2f} it/s  eta {format_duration(record.get('eta_s', float('nan')))}  "
                f"{format_values(record)}"
            )
        elif kind == "val":
            mark = "  (best)" if record.get("best") else ""
            line = f"validation @ {it}: PSNR {record['psnr']:.3f} dB  SSIM {record['ssim']:.4f}{mark}"
        elif kind == "checkpoint":
            line = f"checkpoint @ {it}: {record['path']}"
        else:
            return
        if self.quiet:
            return
        self.console.print(line, highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
