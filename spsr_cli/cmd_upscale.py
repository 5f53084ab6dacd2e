"""``spsr upscale``: super-resolve image files with an SPSR (or ESRGAN/EDSR/SRResNet) model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from spsr_cli._common import MODEL_SCALE_HELP, console, err_console, fail, guarded, warn


def pick_device(device: str) -> str:
    """The checked device name (``auto`` resolved); an unknown one is a ``ConfigError``."""
    from spsr.devices import resolve_device

    return resolve_device(device)


def _why(source: Path, reason: str) -> str:
    """``source: reason`` unless the reason already names the file."""
    return reason if str(source) in reason else f"{source}: {reason}"


@guarded
def upscale(
    inputs: Annotated[str, typer.Argument(help="Input image, folder, or glob pattern (quoted). With --samples: the output folder.")],
    output: Annotated[Optional[Path], typer.Argument(help="Output folder (or a file name for a single input).")] = None,
    weights: Annotated[str, typer.Option("--weights", "-w", help="Weights file, run folder, or built-in name (default, psnr, perceptual).")] = "default",
    model_scale: Annotated[Optional[int], typer.Option("--model-scale", min=1, help=MODEL_SCALE_HELP, show_default=False)] = None,
    samples: Annotated[bool, typer.Option("--samples", help="Upscale the sample photos that ship with spsr.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders of an input folder.")] = False,
    tile: Annotated[int, typer.Option(help="Tile size in input pixels (0 = whole image).")] = 256,
    tile_overlap: Annotated[int, typer.Option(help="Context and blending band between tiles, input pixels.")] = 16,
    batch: Annotated[int, typer.Option(help="Tiles per forward pass.")] = 4,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16 (fp16 only on CUDA).")] = "auto",
    outscale: Annotated[Optional[float], typer.Option(help="Final scale if different from the model's (resampled with bicubic).")] = None,
    suffix: Annotated[str, typer.Option(help="Appended to output file names, e.g. _x4 (default: none; _x<scale> when writing into the input folder).")] = "",
    ext: Annotated[Optional[str], typer.Option(help="Output format (png, jpg, webp, tif, bmp); default: the input's.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (default: skip them, so runs resume).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Upscale images. Existing outputs are skipped; unreadable files are reported and the rest go on.

    [bold]Examples[/]

      spsr upscale photo.png photo_x4.png
      spsr upscale photos/ out/ --recursive --tile 128
      spsr upscale "shots/*.jpg" out/ --weights runs/spsr_g --suffix _x4 --ext png
    """
    import torch

    from spsr.data.image_io import read_image, write_image
    from spsr.errors import ConfigError, SpsrError
    from spsr.infer import TiledUpscaler, load_model
    from spsr.infer.files import (
        InputSet,
        check_suffix,
        describe_left_out,
        find_inputs,
        pending,
        plan_jobs,
        sample_images,
    )
    from spsr.infer.upscale import upscale_loaded

    check_suffix(suffix)
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
    loaded = load_model(weights, device=dev, model_scale=model_scale)
    for line in loaded.warnings:
        warn(line)
    # Outputs that would land on their inputs (same folder, no --suffix) get _x<scale>.
    plan = plan_jobs(found, out_dir, suffix, ext, default_suffix=f"_x{outscale or loaded.spec.scale:g}")
    todo, skipped, failed = pending(plan.jobs, overwrite)
    failed += plan.clashes
    upscaler = TiledUpscaler(loaded.model, loaded.spec.scale, tile=tile, overlap=tile_overlap,
                             batch=batch, device=dev, precision=precision)
    if not quiet:
        for line in describe_left_out(found, plan):
            err_console.print(line, highlight=False, soft_wrap=True)
        if plan.suffix != suffix:
            err_console.print(f"output folder is the input folder: names get the suffix {plan.suffix}",
                              highlight=False, soft_wrap=True)
        for source, why in failed:
            err_console.print(f"[yellow]skipped[/] {_why(source, why)}", highlight=False, soft_wrap=True)
        note = f", resampled to x{outscale:g}" if outscale and outscale != loaded.spec.scale else ""
        err_console.print(f"model: {loaded.spec.describe()}{note} on {dev}, {str(upscaler.dtype).replace('torch.', '')}"
                          f"; {len(todo)} to do, {skipped} already done")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    done = 0
    already_failed = len(failed)
    megapixels = 0.0
    start = time.perf_counter()
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=quiet or not err_console.is_terminal) as bar:
        task = bar.add_task("upscaling", total=len(todo), rate="")
        for job in todo:
            try:
                image = read_image(job.source)
                result = upscale_loaded(image, upscaler, outscale)
                write_image(job.output, result, icc_profile=image.icc_profile)
                done += 1
                megapixels += result.shape[0] * result.shape[1] / 1e6
            except (SpsrError, OSError, ValueError, MemoryError) as exc:
                reason = str(exc) if not isinstance(exc, MemoryError) else "out of memory; try a smaller --outscale"
                failed.append((job.source, reason))
                if len(plan.jobs) > 1:  # a single input's reason is the final error line
                    err_console.print(f"[yellow]skipped[/] {_why(job.source, reason)}", highlight=False, soft_wrap=True)
            except torch.cuda.OutOfMemoryError:
                failed.append((job.source, "out of GPU memory; try --tile 128 --batch 1"))
            except RuntimeError as exc:  # torch's CPU allocator failing is a RuntimeError
                if "alloc" not in str(exc):
                    raise
                failed.append((job.source, "out of memory; try a smaller --outscale or --tile 128"))
            elapsed = time.perf_counter() - start
            bar.update(task, advance=1,
                       rate=f"{done / elapsed:.2f} img/s, {megapixels / elapsed:.2f} MP/s" if elapsed > 0 else "")
            if not err_console.is_terminal and not quiet:
                err_console.print(f"[{done + len(failed) - already_failed}/{len(todo)}] {job.output}", highlight=False)
    elapsed = time.perf_counter() - start
    if not quiet:
        console.print(f"upscaled {done} image(s) in {elapsed:.1f} s ({megapixels / max(elapsed, 1e-9):.2f} output MP/s), "
                      f"{skipped} skipped as existing, {len(failed)} failed → {out_dir}")
    if failed:
        if len(plan.jobs) == 1 and not skipped:
            raise fail(_why(*failed[0]))
        raise fail(f"{len(failed)} file(s) could not be upscaled (first: {_why(*failed[0])})")
