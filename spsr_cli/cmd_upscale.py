"""``spsr upscale``: super-resolve image files with an SPSR (or ESRGAN/EDSR/SRResNet) model."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spsr.progress import format_rate
from spsr_cli._common import (
    PRECISIONS,
    DeviceOption,
    EngineOption,
    EngineRetuneOption,
    ModelScaleOption,
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
    from spsr.api import Upscaler
    from spsr.infer.files import Job
    from spsr.lite.upscaler import WarmUpscaler
    from spsr.lite.warm import WarmRequest

#: Reasons of a file that ran out of memory (host RAM, CUDA, torch's CPU allocator).
HOST_HINT = "out of memory; try a smaller --outscale"
GPU_HINT = "out of GPU memory; try --tile 128 --batch 1"
ALLOC_HINT = "out of memory; try a smaller --outscale or --tile 128"


def megapixels_of(record: dict[str, Any]) -> float:
    w, h = record["output_size"] or (0, 0)
    return w * h / 1e6


def _emit(record: dict[str, Any]) -> None:
    typer.echo(json.dumps(record, ensure_ascii=False))


def _why(source: Path, reason: str) -> str:
    """``source: reason`` unless the reason already names the file."""
    return reason if str(source) in reason else f"{source}: {reason}"


@dataclass(frozen=True)
class UpscaleSettings:
    """What ``spsr upscale`` asks for, and the upscaler that runs it: the warm start
    (:class:`spsr.lite.upscaler.WarmUpscaler`, no PyTorch) where an earlier full run recorded the
    same request (:mod:`spsr.lite.warm`), else :class:`spsr.api.Upscaler`."""

    request: WarmRequest
    engine_retune: bool

    def full(self) -> Upscaler:
        """The full upscaler: PyTorch loads the weights; the engine converts or finds its conversion."""
        from spsr.api import Upscaler

        r = self.request
        check_engine(r.engine)
        return Upscaler(r.weights, engine=r.engine, precision=r.precision, tile=r.tile, device=pick_device(r.device),
                        tile_overlap=r.overlap, batch=r.batch, model_scale=r.model_scale, on_note=warn,
                        engine_retune=self.engine_retune)

    def upscaler(self) -> Upscaler | WarmUpscaler:
        if not self.engine_retune:
            from spsr.lite.tiles import default_batch
            from spsr.lite.upscaler import WarmUnavailable, WarmUpscaler
            from spsr.lite.warm import lookup

            record, _ = lookup(self.request)
            if record is not None:
                r = self.request
                try:
                    batch = r.batch if r.batch is not None else default_batch("cpu")  # warm runs the CPU
                    return WarmUpscaler(record, r.tile, r.overlap, batch, fallback=self.full,
                                        on_note=warn)
                except WarmUnavailable:
                    pass  # the full path runs, and records what it ran
        return self.full()

    def finish(self, up: Upscaler | WarmUpscaler) -> str | None:
        """After a run that upscaled a file: a full run records what ran for the next run's warm
        start (or removes the record when PyTorch ran). Returns the note on what compiling tile
        shapes cost, where it was noticeable."""
        from spsr.api import Upscaler
        from spsr.lite.warm import remember

        full = up if isinstance(up, Upscaler) else up.full
        if isinstance(full, Upscaler):
            remember(self.request, full.warm_record())
        return (full or up).compile_note()


@guarded
def upscale(
    inputs: Annotated[str, typer.Argument(
        help="Input image, folder, or glob pattern (quoted). With --samples: the output folder.")],
    output: Annotated[Path | None, typer.Argument(
        help="Output folder (or a file name for a single input).")] = None,
    weights: Annotated[str, typer.Option(
        "--weights", "-w",
        help="Weights file, run folder, or built-in name (default, psnr).")] = "default",
    model_scale: ModelScaleOption = None,
    samples: Annotated[bool, typer.Option(
        "--samples", help="Upscale the sample photos that ship with spsr.")] = False,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Descend into sub-folders of an input folder.")] = False,
    tile: Annotated[int, typer.Option(help="Tile size in input pixels (0 = whole image).")] = 256,
    tile_overlap: Annotated[int | None, typer.Option(
        help="Context and blending band between tiles, input pixels (default 16, less for tiles "
        "under 34 so that it stays below half the tile, as in spsr eval).",
        show_default=False)] = None,
    batch: Annotated[int | None, typer.Option(
        help="Tiles per forward pass (default: 1 on the CPU, 4 on a GPU).", show_default=False)] = None,
    device: DeviceOption = "auto",
    precision: Annotated[str, typer.Option(
        help="auto, fp32, bf16 or fp16 (fp16 only on CUDA).",
        autocompletion=complete(*PRECISIONS))] = "auto",
    engine: EngineOption = "auto",
    engine_retune: EngineRetuneOption = False,
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
    from spsr.atomic import check_writable
    from spsr.data.image_io import read_image, write_image
    from spsr.errors import ConfigError
    from spsr.infer.files import (
        InputSet,
        check_suffix,
        describe_left_out,
        find_inputs,
        pending,
        plan_jobs,
        sample_images,
    )
    from spsr.infer.shards import resolve_shard
    from spsr.lite.tiles import eval_overlap

    check_suffix(suffix)
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
    if tile_overlap is None:
        tile_overlap = eval_overlap(tile)
    from spsr.lite.warm import WarmRequest

    settings = UpscaleSettings(WarmRequest(weights, engine, precision, tile, tile_overlap, batch, model_scale, device),
                               engine_retune)
    up = settings.upscaler()
    # Outputs that would land on their inputs (same folder, no --suffix) get _x<scale>.
    plan = plan_jobs(found, out_dir, suffix, ext, default_suffix=f"_x{outscale or up.scale:g}",
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
        note = f", resampled to x{outscale:g}" if outscale and outscale != up.scale else ""
        err_console.print(f"model: {up.model_description}{note} on {up.device}, {up.describe_engine()}"
                          f"; {len(todo)} to do, {skipped} already done")

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn

    from spsr.infer.batch import (
        BatchEvents,
        BatchResult,
        FileInProgress,
        MemoryHints,
        decided_records,
        run_jobs,
    )
    from spsr.progress import BAR, COUNT, DESCRIPTION, ETA, RATE, EtaColumn, FittingProgress

    if as_json:  # what is decided before any upscaling: skipped as existing, or blocked
        for record in decided_records(plan.jobs, todo, failed):
            _emit(record)

    def upscale_one(file: FileInProgress) -> tuple[int, int]:
        image = read_image(file.job.source)
        file.input_size = (image.pixels.shape[1], image.pixels.shape[0])
        result = up.upscale_image(image, outscale, on_tiles=file.on_tiles)
        write_image(file.job.output, result, icc_profile=image.icc_profile)
        return result.shape[1], result.shape[0]

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), EtaColumn())
    on_terminal = err_console.is_terminal
    with FittingProgress(*columns, priorities=[DESCRIPTION, BAR, COUNT, RATE, ETA], console=err_console,
                         disable=quiet or not on_terminal) as bar:
        task = bar.add_task("upscaling", total=len(todo), rate="")
        tile_bar = TileProgress(bar, plain=not on_terminal and not quiet)

        class Shown(BatchEvents):
            def file_started(self, job: Job) -> None:
                tile_bar.begin(job.source.name)

            def tiles(self, done: int, total: int) -> None:
                tile_bar.update(done, total)

            def file_finished(self, record: dict[str, Any], so_far: BatchResult) -> None:
                tile_bar.end()
                failed_here = record["status"] == "failed"
                if failed_here and len(plan.jobs) > 1 and record["reason"] not in (GPU_HINT, ALLOC_HINT):
                    # a single input's reason is the final error line; memory failures: the summary
                    err_console.print(f"[yellow]skipped[/] {_why(Path(record['input']), record['reason'])}",
                                      highlight=False, soft_wrap=True)
                if as_json:
                    _emit(record)
                elapsed = time.perf_counter() - so_far.started
                bar.update(task, advance=1,
                           rate=f"{format_rate(so_far.done / elapsed, 'img')}, "
                           f"{format_rate(so_far.megapixels * 1e6 / elapsed, 'P')}" if elapsed > 0 else "")
                if not on_terminal and not quiet and not failed_here:  # failures: their own line
                    took = record["seconds"]
                    speed = f", {format_rate(megapixels_of(record) * 1e6 / took, 'P')}" if took > 0 else ""
                    err_console.print(f"[{so_far.processed}/{len(todo)}] {record['output']} "
                                      f"({took:.1f} s{speed})", highlight=False)

        batch_result = run_jobs(todo, upscale_one, events=Shown(), file_errors=(ValueError,),
                                memory=MemoryHints(host=HOST_HINT, gpu=GPU_HINT, allocator=ALLOC_HINT))
    done, megapixels, elapsed = batch_result.done, batch_result.megapixels, batch_result.seconds
    if done:
        compiled = settings.finish(up)
        if compiled is not None and not quiet:
            warn(compiled)
    failed += batch_result.failed
    if not quiet:
        throughput = format_rate(megapixels * 1e6 / max(elapsed, 1e-9), "P")
        summary = (f"upscaled {done} image(s) in {elapsed:.1f} s ({throughput} output), "
                   f"{skipped} skipped as existing, {len(failed)} failed → {out_dir}")
        (err_console if as_json else console).print(summary, highlight=False)
    if failed:
        if len(plan.jobs) == 1 and not skipped:
            raise fail(_why(*failed[0]))
        raise fail(f"{len(failed)} file(s) could not be upscaled (first: {_why(*failed[0])})")
