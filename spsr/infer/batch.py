"""Running a batch command's planned jobs: one call per file, failures reported, the batch goes on.

``spsr upscale`` and ``spsr gradmap`` plan their jobs with :mod:`spsr.infer.files`
(``find_inputs`` → ``plan_jobs`` → ``pending``) and hand the jobs to do to :func:`run_jobs`
with a callable that turns one input into its output. The loop keeps the rules both commands
share, so that a library user running their own per-file work gets them too:

* a file that cannot be read, decoded or processed (:class:`~spsr.errors.SpsrError`,
  ``OSError``, ``MemoryError`` and whatever else the caller lists) is a *failed* record with a
  one-line reason, and the next file is tried; the caller decides the exit code;
* running out of memory (host RAM, CUDA, torch's CPU allocator) is a per-file failure whose
  reason says what to lower (:class:`MemoryHints`); the tiled upscaler has already backed off
  (smaller batches) before the error reaches the loop;
* a failed *write* (full or read-only disk) stops the batch, since the next outputs would fail
  too: the :class:`~spsr.errors.WriteError` is re-raised saying how many outputs were written
  before (a re-run skips them, as outputs that exist are not in the jobs to do);
* progress goes to :class:`BatchEvents` (file started, tiles done / total, file finished
  with its record); the records are the ones ``spsr upscale --json`` prints, one per file.

Example::

    from pathlib import Path

    from spsr import Upscaler
    from spsr.data.image_io import read_image, write_image
    from spsr.infer import find_inputs, pending, plan_jobs, run_jobs

    up = Upscaler("default")
    plan = plan_jobs(find_inputs("photos/"), Path("out"), suffix="_x4")
    todo, skipped, blocked = pending(plan.jobs, overwrite=False)

    def upscale_one(file):
        image = read_image(file.job.source)
        file.input_size = (image.pixels.shape[1], image.pixels.shape[0])
        out = up.upscale_image(image, None, on_tiles=file.on_tiles)
        write_image(file.job.output, out, icc_profile=image.icc_profile)
        return out.shape[1], out.shape[0]

    result = run_jobs(todo, upscale_one)
    print(result.done, "written,", len(result.failed), "failed")
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spsr.errors import SpsrError, WriteError
from spsr.infer.files import Job

#: ``on_tiles(done, total)``: tiles of the current file finished so far.
TileCallback = Callable[[int, int], None]


def file_record(job: Job, status: str, input_size: tuple[int, int] | None = None,
                output_size: tuple[int, int] | None = None, seconds: float = 0.0,
                reason: str | None = None, network_seconds: float | None = None) -> dict[str, Any]:
    """One file's record, as ``spsr upscale --json`` prints it; sizes are ``[width, height]``.

    ``status`` is ``done``, ``failed`` or ``skipped``; ``reason`` is present for the latter two;
    ``network_seconds`` (the network's part of ``seconds``) where the upscaler reported tiles.
    """
    record: dict[str, Any] = {
        "input": str(job.source), "output": str(job.output), "status": status,
        "input_size": list(input_size) if input_size else None,
        "output_size": list(output_size) if output_size else None,
        "seconds": round(seconds, 3),
    }
    if network_seconds is not None:
        record["network_seconds"] = round(network_seconds, 3)
    if reason is not None:
        record["reason"] = reason
    return record


class TileClock:
    """A tile callback that times the network: from an image's first progress report (``0`` tiles
    done, given before the first tile runs) to its last (after the last tile, its blending
    included), and passes every report on.

    Args:
        forward: the callback the reports go on to.
    """

    def __init__(self, forward: TileCallback) -> None:
        self.forward = forward
        self.first: float | None = None
        self.last: float | None = None

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.forward(done, total)

    @property
    def seconds(self) -> float | None:
        """Seconds between the first and the last report; None before two reports."""
        if self.first is None or self.last is None or self.last == self.first:
            return None
        return self.last - self.first


def decided_records(jobs: Sequence[Job], todo: Sequence[Job],
                    blocked: Sequence[tuple[Path, str]]) -> list[dict[str, Any]]:
    """The records of files decided before any work: jobs left out of ``todo`` because their
    output exists (``skipped``), then the ``blocked`` inputs (``failed``, no output)."""
    planned = {id(j) for j in todo}
    stopped = dict(blocked)
    records = [file_record(job, "skipped", reason="output exists")
               for job in jobs if id(job) not in planned and job.source not in stopped]
    records += [{"input": str(source), "output": None, "status": "failed", "input_size": None,
                 "output_size": None, "seconds": 0.0, "reason": why} for source, why in blocked]
    return records


class _NeverRaised(Exception):
    """Stands for ``torch.cuda.OutOfMemoryError`` in a process that never imported PyTorch."""


def _cuda_out_of_memory() -> type[Exception]:
    """``torch.cuda.OutOfMemoryError`` where PyTorch is loaded (without it nothing can raise it):
    the loop runs without importing PyTorch for the warm start of ``spsr upscale``."""
    torch = sys.modules.get("torch")
    return torch.cuda.OutOfMemoryError if torch is not None else _NeverRaised


@dataclass(frozen=True)
class MemoryHints:
    """The reason a file's record gives when memory runs out while processing it.

    Attributes:
        host: for ``MemoryError`` (host RAM).
        gpu: for ``torch.cuda.OutOfMemoryError``; None lets the error stop the batch (the
            caller's error handling reports it).
        allocator: for a ``RuntimeError`` mentioning ``alloc`` (torch's CPU allocator failing);
            None lets it stop the batch, as any other ``RuntimeError`` does.
    """

    host: str = "out of memory"
    gpu: str | None = None
    allocator: str | None = None


@dataclass
class FileInProgress:
    """What the per-file callable gets: the job, the tile callback to pass on to the upscaler,
    and a slot for the input's size (``(width, height)``), kept in the record even when the
    file fails after it was read."""

    job: Job
    on_tiles: TileCallback
    input_size: tuple[int, int] | None = None


@dataclass
class BatchResult:
    """What :func:`run_jobs` did so far (events see it grow) and in the end.

    Attributes:
        total: the number of jobs given.
        done: files written.
        failed: ``(input, reason)`` of the files that failed, in order.
        records: one record per file processed (:func:`file_record`).
        megapixels: output megapixels written.
        started: ``time.perf_counter()`` at the start of the run.
        seconds: the whole run's time (set at the end).
    """

    total: int
    done: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    megapixels: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    @property
    def processed(self) -> int:
        """Files finished so far, written or failed."""
        return self.done + len(self.failed)


class BatchEvents:
    """Progress callbacks of :func:`run_jobs`; the defaults do nothing. Subclass and override."""

    def file_started(self, job: Job) -> None:
        """``job`` is about to be processed."""

    def tiles(self, done: int, total: int) -> None:
        """Tiles of the current file: ``done`` of ``total`` (from the upscaler)."""

    def file_finished(self, record: dict[str, Any], result: BatchResult) -> None:
        """A file is written or failed (``record["status"]``); ``result`` holds the totals so far."""


def run_jobs(
    jobs: Sequence[Job],
    process: Callable[[FileInProgress], tuple[int, int]],
    *,
    events: BatchEvents | None = None,
    memory: MemoryHints | None = None,
    file_errors: tuple[type[Exception], ...] = (),
    noun: str = "image(s)",
) -> BatchResult:
    """Run ``process`` on each job in order; a file that fails is recorded and the batch goes on.

    Args:
        jobs: the jobs to do (``pending``'s first list: existing outputs already sorted out).
        process: reads ``file.job.source``, writes ``file.job.output`` and returns the output's
            ``(width, height)``; it may set ``file.input_size`` and pass ``file.on_tiles`` to the
            upscaler.
        events: progress callbacks (none by default).
        memory: the reasons given when memory runs out (default: :class:`MemoryHints`'s).
        file_errors: more exception types that fail one file only (besides ``SpsrError``,
            ``OSError`` and ``MemoryError``), e.g. ``ValueError``.
        noun: what the outputs are called in the note of a failed write.

    Returns:
        The totals and one record per file; ``failed`` reasons are ``str(error)``, or the
        memory hint.

    Raises:
        WriteError: an output could not be written (disk full, read-only, ...): the batch stops,
            the error's note says how many outputs were written before.
    """
    events = events or BatchEvents()
    memory = memory or MemoryHints()
    caught: tuple[type[Exception], ...] = (SpsrError, OSError, MemoryError, *file_errors)
    result = BatchResult(total=len(jobs))
    for job in jobs:
        clock = TileClock(events.tiles)
        file = FileInProgress(job, clock)
        events.file_started(job)
        start = time.perf_counter()
        reason: str | None = None
        try:
            width, height = process(file)
        except WriteError as exc:  # a full or read-only disk: the next outputs would fail too
            raise exc.with_note(f"{result.done} of {len(jobs)} {noun} written before; a "
                                "re-run skips them") from None
        except caught as exc:
            reason = memory.host if isinstance(exc, MemoryError) else str(exc)
        except _cuda_out_of_memory():
            if memory.gpu is None:
                raise
            reason = memory.gpu
        except RuntimeError as exc:  # torch's CPU allocator failing is a RuntimeError
            if memory.allocator is None or "alloc" not in str(exc):
                raise
            reason = memory.allocator
        seconds = time.perf_counter() - start
        if reason is None:
            result.done += 1
            result.megapixels += width * height / 1e6
            record = file_record(job, "done", file.input_size, (width, height), seconds,
                                 network_seconds=clock.seconds)
        else:
            result.failed.append((job.source, reason))
            record = file_record(job, "failed", file.input_size, seconds=seconds, reason=reason)
        result.records.append(record)
        events.file_finished(record, result)
    result.seconds = time.perf_counter() - result.started
    return result


__all__ = [
    "BatchEvents",
    "BatchResult",
    "FileInProgress",
    "MemoryHints",
    "TileCallback",
    "TileClock",
    "decided_records",
    "file_record",
    "run_jobs",
]
