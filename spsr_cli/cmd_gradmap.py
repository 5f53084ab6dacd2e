"""``spsr gradmap``: gradient-map pictures of images, and the papers' panels with a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from spsr_cli._common import (
    DeviceOption,
    EngineOption,
    EngineRetuneOption,
    ModelScaleOption,
    check_engine,
    console,
    err_console,
    fail,
    guarded,
    warn,
)


@guarded
def gradmap(
    inputs: Annotated[str, typer.Argument(
        help="Input image, folder or glob pattern (LR images when --weights is given).")],
    output: Annotated[Path, typer.Argument(
        help="Output folder (or a file name for a single input).")],
    weights: Annotated[str | None, typer.Option(
        "--weights", "-w",
        help="SPSR weights: also write a panel M(LR)↑ | gradient branch | M(SR) [| M(HR)].")] = None,
    model_scale: ModelScaleOption = None,
    hr: Annotated[Path | None, typer.Option(
        help="Folder of HR references (paired by file name as spsr eval pairs) to add M(HR) to "
        "panels.")] = None,
    padding: Annotated[int, typer.Option(
        help="Gradient operator padding: 1 (paper) or 2 (official loss form).")] = 1,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Descend into sub-folders.")] = False,
    tile: Annotated[int, typer.Option(
        help="Tile size in LR pixels for the model's part of panels, SR image and gradient branch "
        "(0 = whole image).")] = 256,
    device: DeviceOption = "auto",
    engine: EngineOption = "auto",
    engine_retune: EngineRetuneOption = False,
    suffix: Annotated[str | None, typer.Option(
        help="Appended to output file names (default: _grad, or _panel with --weights).",
        show_default=False)] = None,
    ext: Annotated[str, typer.Option(help="Output format (png, tif, webp, bmp, jpg).")] = "png",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace existing outputs (never an input).")] = False,
    name_with_ext: Annotated[bool, typer.Option(
        "--name-with-ext", help="Keep the input's extension in output names (x.jpg → x_jpg_grad.png): "
        "for folders holding x.jpg and x.png.")] = False,
) -> None:
    """Write gradient maps M(·) of images; with --weights, panels like the papers' figures.

    [bold]Examples[/]

      spsr gradmap photo.png photo_grad.png
      spsr gradmap lr/ panels/ --weights psnr --hr hr/
    """
    from spsr.atomic import check_writable
    from spsr.data.image_io import is_image_file, read_image, to_tensor, write_image
    from spsr.data.pairing import canonical_reference_stem, match_stem
    from spsr.infer import TiledUpscaler, load_model
    from spsr.infer.batch import BatchEvents, BatchResult, FileInProgress, run_jobs
    from spsr.infer.files import describe_left_out, find_inputs, pending, plan_jobs
    from spsr.infer.gradmap import comparison_panel, gradient_picture
    from spsr_cli._common import pick_device

    if model_scale is not None and weights is None:
        raise fail("--model-scale describes the --weights; give --weights too")
    if padding not in (1, 2):
        raise fail("--padding must be 1 or 2")
    check_engine(engine)
    found = find_inputs(inputs, recursive)
    default_suffix = "_grad" if weights is None else "_panel"
    plan = plan_jobs(found, output, suffix=default_suffix if suffix is None else suffix, ext=ext,
                     default_suffix=default_suffix, name_with_ext=name_with_ext)
    todo, _, problems = pending(plan.jobs, overwrite)
    problems += found.unreadable
    if todo:
        check_writable(todo[0].output.parent)  # a read-only or full output fails before any work
    for line in describe_left_out(found, plan):
        err_console.print(line, highlight=False, soft_wrap=True)
    for source, why in problems:
        err_console.print(f"[yellow]skipped[/] {source}: {why}", highlight=False, soft_wrap=True)
    up = None
    if weights is not None:
        dev = pick_device(device)
        loaded = load_model(weights, device=dev, model_scale=model_scale)
        for line in loaded.warnings:
            warn(line)
        if not loaded.spec.has_gradient_branch:
            raise fail(f"{weights}: panels need an SPSR model with a gradient branch, not {loaded.spec.describe()}")
        scale = loaded.spec.scale
        up = TiledUpscaler(loaded.model, scale, tile=tile, device=dev, precision="fp32", engine=engine,
                           on_note=warn, engine_retune=engine_retune)
    hr_index: dict[str, Path] = {}
    if hr is not None:
        if not hr.is_dir():
            raise fail(f"{hr}: not a folder")
        for p in sorted(hr.iterdir()):  # references by their stem less _HR / _GT
            if is_image_file(p):
                hr_index.setdefault(canonical_reference_stem(p.stem), p)

    def picture_of(file: FileInProgress) -> tuple[int, int]:
        image = read_image(file.job.source)
        x = to_tensor(image.pixels)
        x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
        if up is None:
            pic = gradient_picture(x, padding)[:, :, None]
        else:
            sr, predicted = up.with_gradient(x)  # tiled: --tile bounds the memory
            ref = None
            stem = match_stem(file.job.source.stem, list(hr_index))  # spsr eval's pairing rules
            if stem is not None:
                ref_img = read_image(hr_index[stem])
                ref = to_tensor(ref_img.pixels)
                ref = ref.expand(3, -1, -1) if ref.shape[0] == 1 else ref
            pic = comparison_panel(x, sr, predicted, scale, ref)
        write_image(file.job.output, pic)
        return pic.shape[1], pic.shape[0]

    class SkippedLines(BatchEvents):
        def file_finished(self, record: dict[str, Any], so_far: BatchResult) -> None:
            if record["status"] != "failed":
                return
            source, reason = record["input"], record["reason"]
            reason = reason if source in reason else f"{source}: {reason}"
            if len(plan.jobs) == 1:
                raise fail(reason)
            err_console.print(f"[yellow]skipped[/] {reason}", highlight=False, soft_wrap=True)

    result = run_jobs(todo, picture_of, events=SkippedLines(), noun="picture(s)")
    written, failed = result.done, len(problems) + len(result.failed)
    console.print(f"wrote {written} gradient picture(s) to {output}" + (f", {failed} failed" if failed else ""))
    if failed:
        raise typer.Exit(1)
