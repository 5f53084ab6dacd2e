"""The library's per-file loop (spsr.infer.batch.run_jobs) that serves spsr upscale and gradmap:
skip-existing, per-file failures, out-of-memory handling, progress events and the JSON records."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from spsr.data.image_io import read_image, to_tensor, write_image
from spsr.errors import ImageReadError, WriteError
from spsr.infer import (
    BatchEvents,
    BatchResult,
    FileInProgress,
    Job,
    MemoryHints,
    TiledUpscaler,
    decided_records,
    find_inputs,
    pending,
    plan_jobs,
    run_jobs,
)


def _images(folder: Path, names: list[str], size: tuple[int, int] = (12, 10)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for name in names:
        path = folder / name
        write_image(path, rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        paths.append(path)
    return paths


def _doubling(file: FileInProgress) -> tuple[int, int]:
    """A per-file callable: nearest-neighbour ×2, with two tile callbacks."""
    pixels = read_image(file.job.source).pixels
    file.input_size = (pixels.shape[1], pixels.shape[0])
    file.on_tiles(0, 2)
    out = pixels.repeat(2, axis=0).repeat(2, axis=1)
    file.on_tiles(2, 2)
    write_image(file.job.output, out)
    return out.shape[1], out.shape[0]


class Log(BatchEvents):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def file_started(self, job: Job) -> None:
        self.events.append(("started", job.source.name))

    def tiles(self, done: int, total: int) -> None:
        self.events.append(("tiles", done, total))

    def file_finished(self, record: dict[str, Any], result: BatchResult) -> None:
        self.events.append(("finished", Path(record["input"]).name, record["status"], result.processed))


def test_existing_outputs_are_skipped_and_recorded_the_rest_is_written(tmp_path: Path) -> None:
    _images(tmp_path / "in", ["a.png", "b.png", "c.png"])
    out = tmp_path / "out"
    plan = plan_jobs(find_inputs(str(tmp_path / "in")), out, suffix="_x2")
    out.mkdir()
    (out / "b_x2.png").write_bytes(b"from an earlier run")
    todo, skipped, blocked = pending(plan.jobs, overwrite=False)
    assert skipped == 1 and not blocked
    assert [r["status"] for r in decided_records(plan.jobs, todo, blocked)] == ["skipped"]
    assert decided_records(plan.jobs, todo, blocked)[0]["reason"] == "output exists"

    log = Log()
    result = run_jobs(todo, _doubling, events=log)
    assert (out / "b_x2.png").read_bytes() == b"from an earlier run"  # never touched
    assert read_image(out / "a_x2.png").pixels.shape == (20, 24, 3)
    assert result.done == 2 and not result.failed and result.total == 2
    assert result.megapixels == pytest.approx(2 * 24 * 20 / 1e6)
    assert log.events == [
        ("started", "a.png"), ("tiles", 0, 2), ("tiles", 2, 2), ("finished", "a.png", "done", 1),
        ("started", "c.png"), ("tiles", 0, 2), ("tiles", 2, 2), ("finished", "c.png", "done", 2),
    ]
    first = result.records[0]
    assert first["input"] == str(tmp_path / "in" / "a.png") and first["output"] == str(out / "a_x2.png")
    assert first["status"] == "done" and first["input_size"] == [12, 10] and first["output_size"] == [24, 20]
    assert isinstance(first["seconds"], float) and first["seconds"] >= 0 and "reason" not in first


def test_a_blocked_output_is_a_failed_record_without_output(tmp_path: Path) -> None:
    _images(tmp_path / "in", ["a.png"])
    plan = plan_jobs(find_inputs(str(tmp_path / "in")), tmp_path / "out", suffix="_x2")
    (tmp_path / "out" / "a_x2.png").mkdir(parents=True)
    todo, _, blocked = pending(plan.jobs, overwrite=True)
    assert todo == []
    (record,) = decided_records(plan.jobs, todo, blocked)
    assert record["status"] == "failed" and record["output"] is None and "is a folder" in record["reason"]


def test_a_failing_file_is_recorded_and_the_batch_goes_on(tmp_path: Path) -> None:
    _images(tmp_path / "in", ["a.png", "c.png"])
    (tmp_path / "in" / "b.png").write_bytes(b"not a png")
    plan = plan_jobs(find_inputs(str(tmp_path / "in")), tmp_path / "out")
    result = run_jobs(plan.jobs, _doubling)
    assert [r["status"] for r in result.records] == ["done", "failed", "done"]
    assert result.done == 2 and [s.name for s, _ in result.failed] == ["b.png"]
    bad = result.records[1]
    assert bad["reason"] == result.failed[0][1] and "b.png" in bad["reason"]
    assert bad["output_size"] is None and bad["input_size"] is None
    assert not (tmp_path / "out" / "b.png").exists() and (tmp_path / "out" / "c.png").is_file()


def test_input_size_is_kept_when_a_file_fails_after_it_was_read(tmp_path: Path) -> None:
    _images(tmp_path / "in", ["a.png"])
    (job,) = plan_jobs(find_inputs(str(tmp_path / "in")), tmp_path / "out").jobs

    def read_then_fail(file: FileInProgress) -> tuple[int, int]:
        file.input_size = (12, 10)
        raise ImageReadError("decoder gave up")

    (record,) = run_jobs([job], read_then_fail).records
    assert record["input_size"] == [12, 10] and record["reason"] == "decoder gave up"


def test_value_errors_fail_one_file_only_when_the_caller_says_so(tmp_path: Path) -> None:
    jobs = [Job(tmp_path / "a.png", tmp_path / "a_out.png")]

    def bad_value(file: FileInProgress) -> tuple[int, int]:
        raise ValueError("odd shape")

    with pytest.raises(ValueError, match="odd shape"):
        run_jobs(jobs, bad_value)
    assert run_jobs(jobs, bad_value, file_errors=(ValueError,)).failed == [(tmp_path / "a.png", "odd shape")]


def test_memory_failures_get_the_callers_hints_and_the_batch_goes_on(tmp_path: Path) -> None:
    jobs = [Job(tmp_path / f"{n}.png", tmp_path / f"{n}_out.png") for n in "abcd"]
    errors: dict[str, BaseException] = {
        "a": MemoryError(),
        "b": torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
        "c": RuntimeError("DefaultCPUAllocator: can't allocate memory"),
    }

    def process(file: FileInProgress) -> tuple[int, int]:
        if file.job.source.stem in errors:
            raise errors[file.job.source.stem]
        return 8, 8

    hints = MemoryHints(host="host hint", gpu="gpu hint", allocator="allocator hint")
    result = run_jobs(jobs, process, memory=hints)
    assert [r["reason"] for r in result.records[:3]] == ["host hint", "gpu hint", "allocator hint"]
    assert result.records[3]["status"] == "done" and result.done == 1
    # without a hint for it, a GPU or allocator failure stops the batch (the caller reports it)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_jobs(jobs, process)
    with pytest.raises(RuntimeError, match="DefaultCPUAllocator"):
        run_jobs(jobs[2:], process, memory=MemoryHints(gpu="gpu hint"))
    assert run_jobs(jobs[:1], process).failed[0][1] == "out of memory"


def test_other_runtime_errors_stop_the_batch(tmp_path: Path) -> None:
    def broken(file: FileInProgress) -> tuple[int, int]:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        run_jobs([Job(tmp_path / "a.png", tmp_path / "b.png")], broken,
                 memory=MemoryHints(gpu="g", allocator="a"))


def test_cuda_out_of_memory_once_backs_off_inside_the_upscaler_and_the_file_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tiled upscaler halves its batch after an out-of-memory and carries on; the loop sees
    # a written file. An upscaler that cannot back off further fails that file only.
    _images(tmp_path / "in", ["a.png", "b.png"], size=(40, 36))
    plan = plan_jobs(find_inputs(str(tmp_path / "in")), tmp_path / "out")
    up = TiledUpscaler(torch.nn.Upsample(scale_factor=4, mode="nearest"), 4, tile=16, overlap=2, batch=4,
                       precision="fp32")
    real_run = up._run
    ooms = {"left": 1}

    def once(x: torch.Tensor) -> torch.Tensor:
        if ooms["left"]:
            ooms["left"] -= 1
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_run(x)

    monkeypatch.setattr(up, "_run", once)

    def upscale(file: FileInProgress) -> tuple[int, int]:
        x = to_tensor(read_image(file.job.source).pixels)
        out = up(x, on_tiles=file.on_tiles)
        write_image(file.job.output, (out.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
        return out.shape[2], out.shape[1]

    log = Log()
    result = run_jobs(plan.jobs, upscale, events=log, memory=MemoryHints(gpu="out of GPU memory"))
    assert [r["status"] for r in result.records] == ["done", "done"] and up.batch < 4
    assert result.records[0]["output_size"] == [160, 144]
    assert any(e[0] == "tiles" for e in log.events)

    whole = TiledUpscaler(torch.nn.Upsample(scale_factor=4), 4, tile=0, precision="fp32")
    monkeypatch.setattr(whole, "_run", lambda x: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("sim")))

    def upscale_whole(file: FileInProgress) -> tuple[int, int]:
        out = whole(to_tensor(read_image(file.job.source).pixels))
        return out.shape[2], out.shape[1]

    failed = run_jobs(plan.jobs, upscale_whole, memory=MemoryHints(gpu="out of GPU memory"))
    assert [r["reason"] for r in failed.records] == ["out of GPU memory"] * 2


def test_a_failed_write_stops_the_batch_saying_what_was_written(tmp_path: Path) -> None:
    jobs = [Job(tmp_path / f"{n}.png", tmp_path / f"{n}_out.png") for n in "abc"]
    seen = []

    def full_after_one(file: FileInProgress) -> tuple[int, int]:
        seen.append(file.job.source.name)
        if len(seen) > 1:
            raise WriteError(file.job.output, errno.ENOSPC)
        return 4, 4

    with pytest.raises(WriteError) as caught:
        run_jobs(jobs, full_after_one, noun="picture(s)")
    assert seen == ["a.png", "b.png"]  # c is not tried
    message = str(caught.value)
    assert "b_out.png" in message and "1 of 3 picture(s) written before; a re-run skips them" in message


def test_network_seconds_span_the_first_to_the_last_tile_report(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake clock: each perf_counter() call in the batch module advances it by one second, so the
    # record's network_seconds counts the clock readings between the first and the last tile report.
    from spsr.infer import batch as batch_module

    ticks = iter(range(1000))
    monkeypatch.setattr(batch_module.time, "perf_counter", lambda: float(next(ticks)))
    _images(tmp_path / "in", ["a.png", "b.png"])
    plan = plan_jobs(find_inputs(str(tmp_path / "in")), tmp_path / "out", suffix="_x2")

    def three_reports(file: FileInProgress) -> tuple[int, int]:
        for done in (0, 1, 2):
            file.on_tiles(done, 2)
        return 24, 20

    def no_reports(file: FileInProgress) -> tuple[int, int]:
        return 24, 20

    reported = run_jobs(plan.jobs, three_reports).records
    assert [r["network_seconds"] for r in reported] == [2.0, 2.0]  # readings at reports 1 and 3
    assert all(r["seconds"] > r["network_seconds"] for r in reported)
    assert all("network_seconds" not in r for r in run_jobs(plan.jobs, no_reports).records)
