"""``spsr upscale``: super-resolve image files with an SPSR (or ESRGAN/EDSR/SRResNet) model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spsr.progress import format_rate
from spsr_cli._common import (
    DEVICE_HELP,
    DEVICES,
    MODEL_SCALE_HELP,
    PRECISIONS,
    EngineOption,
    ShardOption,
    TileProgress,
    check_engine,
    complete,
    console,
    err_console,
    fail,
    guarded,
    pick_device,
    warn,
)

if TYPE_CHECKING:
    from spsr.infer.files import Job

def _record(job: Job, status: str, in_size: tuple[int, int] | None = None,
            out_size: tuple[int, int] | None = None, seconds: float = 0.0,
            reason: str | None = None) -> dict[str, Any]:
    """One file's ``--json`` record; sizes are [width, height] in pixels."""
    record: dict[str, Any] = {
        "input": str(job.source), "output": str(job.output), "status": status,
        "input_size": list(in_size) if in_size else None, "output_size": list(out_size) if out_size else None,
        "seconds": round(seconds, 3),
    }
    if reason is not None:
        record["reason"] = reason
    return record


def megapixels_of(record: dict[str, Any]) -> float:
    w, h = record["output_size"] or (0, 0)
    return w * h / 1e6


def _emit(record: dict[str, Any]) -> None:
    typer.echo(json.dumps(record, ensure_ascii=False))


def _why(source: Path, reason: str) -> str:
    """``source: reason`` unless the reason already names the file."""
    return reason if str(source) in reason else f"{source}: {reason}"


@guarded
def upscale(
    inputs: Annotated[str, typer.Argument(
        help="Input image, folder, or glob pattern (quoted). With --samples: the output folder.")],
    output: Annotated[Path | None, typer.Argument(
        help="Output folder (or a file name for a single input).")] = None,
    weights: Annotated[str, typer.Option(
        "--weights", "-w",
        help="Weights file, run folder, or built-in name (default, psnr).")] = "default",
    model_scale: Annotated[int | None, typer.Option(
        "--model-scale", min=1, help=MODEL_SCALE_HELP, show_default=False)] = None,
    samples: Annotated[bool, typer.Option(
        "--samples", help="Upscale the sample photos that ship with spsr.")] = False,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Descend into sub-folders of an input folder.")] = False,
    tile: Annotated[int, typer.Option(help="Tile size in input pixels (0 = whole image).")] = 256,
    tile_overlap: Annotated[int | None, typer.Option(
        help="Context and blending band between tiles, input pixels (default 16, less for tiles "
        "under 34 so that it stays below half the tile, as in spsr eval).",
        show_default=False)] = None,
    batch: Annotated[int, typer.Option(help="Tiles per forward pass.")] = 4,
    device: Annotated[str, typer.Option(help=DEVICE_HELP, autocompletion=complete(*DEVICES))] = "auto",
    precision: Annotated[str, typer.Option(
        help="auto, fp32, bf16 or fp16 (fp16 only on CUDA).",
        autocompletion=complete(*PRECISIONS))] = "auto",
    engine: EngineOption = "auto",
    shard: ShardOption = None,
    outscale: Annotated[float | None, typer.Option(
        help="Final scale if different from the model's (resampled with bicubic).")] = None,
    suffix: Annotated[str, typer.Option(
        help="Appended to output file names, e.g. _x4 (default: none; _x<scale> when writing into "
        "the input folder).")] = "",
    ext: Annotated[str | None, typer.Option(
        help="Output format (png, jpg, webp, tif, bmp); default: the input's.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace existing outputs (default: skip them, so runs resume).")] = False,
    name_with_ext: Annotated[bool, typer.Option(
        "--name-with-ext", help="Keep the input's extension in output names (x.jpg → x_jpg.png with "
        "--ext png): for folders holding x.jpg and x.png.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON record per file on stdout (input, output, sizes, seconds, status); "
        "messages go to stderr.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Upscale images. Existing outputs are skipped; unreadable files are reported and the rest go on.

    Progress is shown per file and, for an image that takes more than a second, per tile (tiles
    done / total, rate, ETA); the summary gives the throughput in output megapixels per second.

    [bold]Examples[/]

      spsr upscale photo.png photo_x4.png
      spsr upscale photos/ out/ --recursive --tile 128
      spsr upscale "shots/*.jpg" out/ --weights runs/spsr_g --suffix _x4 --ext png
    """
    import torch

    from spsr.api import Upscaler
    from spsr.atomic import check_writable
    from spsr.data.image_io import read_image, write_image
    from spsr.errors import ConfigError, SpsrError, WriteError
    from spsr.infer.files import (
        InputSet,
        check_suffix,
        describe_left_out,
        find_inputs,
        pending,
        plan_jobs,
        sample_images,
    )
    from spsr.infer.session import eval_overlap

    check_suffix(suffix)
    check_engine(engine)
    from spsr.infer.shards import resolve_shard

    this_shard = resolve_shard(shard)
    if samples:
        if output is not None:
            raise fail("with --samples give only the output folder")
        out_dir = Path(inputs)
        found = InputSet(sample_images(), None)
        if not found.files:
            raise fail("no sample images are installed with this copy of spsr")
    else:
        if output is None:
            raise fail("missing OUTPUT: spsr upscale INPUT OUTPUT")
        out_dir = output
        found = find_inputs(inputs, recursive)
    if outscale is not None and outscale <= 0:
        raise ConfigError("--outscale must be positive")

    dev = pick_device(device)
    if tile_overlap is None:
        tile_overlap = eval_overlap(tile)
    up = Upscaler(weights, engine=engine, precision=precision, tile=tile, device=dev, tile_overlap=tile_overlap,
                  batch=batch, model_scale=model_scale, on_note=warn)
    loaded, upscaler = up.loaded, up.tiled
    # Outputs that would land on their inputs (same folder, no --suffix) get _x<scale>.
    plan = plan_jobs(found, out_dir, suffix, ext, default_suffix=f"_x{outscale or loaded.spec.scale:g}",
                     name_with_ext=name_with_ext, ext_option=ext is not None)
    if this_shard is not None:  # skip-existing makes each shard resumable on its own
        import dataclasses

        total_jobs = len(plan.jobs)
        plan = dataclasses.replace(plan, jobs=this_shard.take(plan.jobs, key=lambda j: str(j.source)))
        if not quiet:
            err_console.print(f"shard {this_shard} ({this_shard.source}): {len(plan.jobs)} of {total_jobs} "
                              "file(s)", highlight=False)
    todo, skipped, failed = pending(plan.jobs, overwrite)
    failed += found.unreadable
    if todo:
        check_writable(todo[0].output.parent)  # a read-only or full output fails before any work
    if not quiet:
        for line in describe_left_out(found, plan):
            err_console.print(line, highlight=False, soft_wrap=True)
        if plan.suffix != suffix:
            err_console.print(f"output folder is the input folder: names get the suffix {plan.suffix}",
                              highlight=False, soft_wrap=True)
        for source, why in failed:
            err_console.print(f"[yellow]skipped[/] {_why(source, why)}", highlight=False, soft_wrap=True)
        note = f", resampled to x{outscale:g}" if outscale and outscale != loaded.spec.scale else ""
        err_console.print(f"model: {loaded.spec.describe()}{note} on {dev}, {upscaler.describe()}"
                          f"; {len(todo)} to do, {skipped} already done")

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    from spsr.progress import BAR, COUNT, DESCRIPTION, ETA, RATE, EtaColumn, FittingProgress

    records: list[dict[str, Any]] = []
    if as_json:  # what is decided before any upscaling: skipped as existing, or blocked
        planned = {id(j) for j in todo}
        blocked = dict(failed)
        for job in plan.jobs:
            if id(job) not in planned and job.source not in blocked:
                records.append(_record(job, "skipped", reason="output exists"))
                _emit(records[-1])
        for source, why in failed:
            _emit({"input": str(source), "output": None, "status": "failed", "input_size": None,
                   "output_size": None, "seconds": 0.0, "reason": why})
    done = 0
    already_failed = len(failed)
    megapixels = 0.0
    start = time.perf_counter()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), EtaColumn())
    on_terminal = err_console.is_terminal
    with FittingProgress(*columns, priorities=[DESCRIPTION, BAR, COUNT, RATE, ETA], console=err_console,
                         disable=quiet or not on_terminal) as bar:
        task = bar.add_task("upscaling", total=len(todo), rate="")
        tiles = TileProgress(bar, plain=not on_terminal and not quiet)
        for job in todo:
            image_start = time.perf_counter()
            in_size: tuple[int, int] | None = None
            try:
                image = read_image(job.source)
                in_size = (image.pixels.shape[1], image.pixels.shape[0])
                tiles.begin(job.source.name)
                result = up.upscale_image(image, outscale, on_tiles=tiles.update)
                write_image(job.output, result, icc_profile=image.icc_profile)
                done += 1
                megapixels += result.shape[0] * result.shape[1] / 1e6
                record = _record(job, "done", in_size, (result.shape[1], result.shape[0]),
                                 time.perf_counter() - image_start)
            except WriteError as exc:  # a full or read-only disk: the next outputs would fail too
                raise fail(str(exc.with_note(f"{done} of {len(todo)} image(s) written before; a "
                                             "re-run skips them"))) from None
            except (SpsrError, OSError, ValueError, MemoryError) as exc:
                reason = str(exc) if not isinstance(exc, MemoryError) else "out of memory; try a smaller --outscale"
                failed.append((job.source, reason))
                if len(plan.jobs) > 1:  # a single input's reason is the final error line
                    err_console.print(f"[yellow]skipped[/] {_why(job.source, reason)}", highlight=False, soft_wrap=True)
                record = _record(job, "failed", in_size, seconds=time.perf_counter() - image_start, reason=reason)
            except torch.cuda.OutOfMemoryError:
                reason = "out of GPU memory; try --tile 128 --batch 1"
                failed.append((job.source, reason))
                record = _record(job, "failed", in_size, seconds=time.perf_counter() - image_start, reason=reason)
            except RuntimeError as exc:  # torch's CPU allocator failing is a RuntimeError
                if "alloc" not in str(exc):
                    raise
                reason = "out of memory; try a smaller --outscale or --tile 128"
                failed.append((job.source, reason))
                record = _record(job, "failed", in_size, seconds=time.perf_counter() - image_start, reason=reason)
            finally:
                tiles.end()
            if as_json:
                _emit(record)
            elapsed = time.perf_counter() - start
            bar.update(task, advance=1,
                       rate=f"{format_rate(done / elapsed, 'img')}, {format_rate(megapixels * 1e6 / elapsed, 'P')}"
                       if elapsed > 0 else "")
            if not on_terminal and not quiet and record["status"] == "done":  # failures: their own line
                took = record["seconds"]
                speed = (f", {format_rate(megapixels_of(record) * 1e6 / took, 'P')}"
                         if record["status"] == "done" and took > 0 else "")
                err_console.print(f"[{done + len(failed) - already_failed}/{len(todo)}] {job.output} "
                                  f"({took:.1f} s{speed})", highlight=False)
    elapsed = time.perf_counter() - start
    if not quiet:
        throughput = format_rate(megapixels * 1e6 / max(elapsed, 1e-9), "P")
        summary = (f"upscaled {done} image(s) in {elapsed:.1f} s ({throughput} output), "
                   f"{skipped} skipped as existing, {len(failed)} failed → {out_dir}")
        (err_console if as_json else console).print(summary, highlight=False)
    if failed:
        if len(plan.jobs) == 1 and not skipped:
            raise fail(_why(*failed[0]))
        raise fail(f"{len(failed)} file(s) could not be upscaled (first: {_why(*failed[0])})")
