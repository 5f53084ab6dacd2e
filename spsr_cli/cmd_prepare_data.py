"""``spsr prepare-data``: images → HDF5 patch store (and ``--info`` on an existing store)."""

from __future__ import annotations

import json
import os
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import TextColumn
from rich.table import Table

if TYPE_CHECKING:
    from spsr.data.store import WriteProgress, WriteSummary
from spsr_cli._common import console, err_console, fail, guarded, progress


class Compression(str, Enum):
    none = "none"
    lzf = "lzf"
    gzip = "gzip"


def _default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _print_info(path: Path, as_json: bool) -> None:
    from spsr.data.store import store_info
    info = store_info(path)
    if as_json:
        typer.echo(json.dumps(info.to_dict(), indent=2))
        return
    table = Table(show_header=False, box=None)
    rows = [
        ("store", info.path),
        ("format version", str(info.format_version)),
        ("scale", f"×{info.scale}"),
        ("patch", f"{info.patch} HR / {info.lr_patch} LR"),
        ("step / threshold", f"{info.step} / {info.threshold}"),
        ("compression", info.compression),
        ("patches", f"{info.num_patches:,}"),
        ("training images", str(info.num_images)),
        ("val images", str(info.num_val)),
        *((("held out for val" if i == 0 else "", path) for i, path in enumerate(info.val_images))),
        ("skipped", str(info.num_skipped)),
        ("size on disk", _size(info.size_bytes)),
        ("degradation", info.degradation),
        ("made by", f"spsr {info.spsr_version}"),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    console.print(table)


def _report(summary: WriteSummary, as_json: bool, quiet: bool) -> None:
    if as_json:
        data = {
            "path": str(summary.path),
            "images": summary.images,
            "val_images": summary.val_images,
            "patches": summary.patches,
            "skipped": [{"path": p, "reason": r} for p, r in summary.skipped],
            "notes": summary.notes,
            "size_bytes": summary.size_bytes,
            "resumed_from": summary.resumed_from,
            "seconds": round(summary.seconds, 3),
        }
        typer.echo(json.dumps(data, indent=2))
        return
    for path, reason in summary.skipped[:20]:
        err_console.print(f"[yellow]skipped:[/] {path}: {reason}", highlight=False, soft_wrap=True)
    if len(summary.skipped) > 20:
        err_console.print(
            f"[yellow]skipped:[/] … and {len(summary.skipped) - 20} more (see --info)"
        )
    for note, paths in summary.notes.items():
        shown = ", ".join(Path(p).name for p in paths[:3]) + (", …" if len(paths) > 3 else "")
        err_console.print(
            f"note: {note}: {len(paths)} image(s) ({shown})", highlight=False, soft_wrap=True
        )
    if quiet:
        return
    rate = summary.patches / summary.seconds if summary.seconds > 0 else 0.0
    resumed = f", resumed after {summary.resumed_from} images" if summary.resumed_from else ""
    console.print(
        f"[green]wrote[/] {summary.path}: {summary.images} training images → "
        f"{summary.patches:,} patches, {summary.val_images} val images, "
        f"{len(summary.skipped)} skipped, {_size(summary.size_bytes)} "
        f"({summary.seconds:.1f} s, {rate:.0f} patches/s{resumed})",
        highlight=False,
        soft_wrap=True,
    )


def _same_store(path: Path, creation_args: dict[str, object]) -> bool:
    """Whether the complete store at ``path`` was made by the same command (sources, options)."""
    from spsr.data.store import store_info
    from spsr.errors import DataStoreError

    try:
        return store_info(path).creation_args == json.loads(json.dumps(creation_args))
    except DataStoreError:
        return False


@guarded
def prepare_data(
    sources: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Folders (searched recursively), image files, or text files listing images.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The .h5 patch store to write. \\[default: "
                     "data/<first SRC's name>_x<scale>.h5]", show_default=False),
    ] = None,
    scale: Annotated[int, typer.Option("--scale", "-s", help="Downscaling factor: 2, 3 or 4.")] = 4,
    patch: Annotated[
        int | None,
        typer.Option(
            help="HR patch size, a multiple of the scale: 480×480 sub-images as the official "
            "preprocessing; training crops 32×32 LR at random inside them. [default: 480]",
            show_default=False,
        ),
    ] = None,
    step: Annotated[
        int | None,
        typer.Option(
            help="Sliding-window stride in HR pixels, a multiple of the scale. [default: patch/2]",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(
            help="Add a last window flush with the border when more pixels than this "
            "are left over. [default: patch/10]",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            "-j",
            help="Decoding processes (0: decode in the main process).",
            show_default="min(4, CPUs)",  # not this machine's count: help and man stay portable
        ),
    ] = _default_workers(),
    compression: Annotated[
        Compression, typer.Option(help="HDF5 compression of the patches.")
    ] = Compression.none,
    val: Annotated[
        int, typer.Option(help="Hold out this many whole images as a validation group.")
    ] = 0,
    limit: Annotated[
        int | None,
        typer.Option(help="Use only the first N images (sorted by path).", show_default=False),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace an existing store (kept until the new one is complete)."
        ),
    ] = False,
    info: Annotated[
        Path | None,
        typer.Option(
            "--info", help="Print what an existing store holds, and exit.", show_default=False
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary (or --info) as JSON.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress, no summary line.")
    ] = False,
) -> None:
    """Cut training patches from images into an HDF5 store: HR mod-cropped, LR = MATLAB bicubic.

    Re-running an interrupted command resumes it; the same command always makes the same store.
    """
    from spsr.data.sources import expand_sources
    from spsr.data.store import StoreOptions, write_store
    if info is not None:
        _print_info(info, as_json)
        return
    if not sources:
        raise fail("give at least one SRC (folder, image, or text file listing images)")
    if output is None:
        from spsr.workspace import Workspace

        output = Workspace.here().store_path(sources, scale)
        default_note = f"store: {output} (-o overrides)"
    else:
        default_note = ""
    if output.is_dir():
        raise fail(f"{output} is a folder; give a file name such as {output / 'train.h5'}")
    if workers < 0:
        raise fail(f"--workers {workers} must be 0 or more")
    options = StoreOptions.make(scale, patch, step, threshold, compression.value, val, limit)
    found = expand_sources(sources)
    if not found.images:
        raise fail(f"no images found in {', '.join(str(s) for s in sources)}")
    total = min(len(found.images), limit) if limit else len(found.images)
    creation_args = {"sources": [str(s) for s in sources], **options.to_dict()}
    if output.is_file() and not overwrite and _same_store(output, creation_args):
        if not quiet and not as_json:
            err_console.print(f"{output} already holds this store (same images and options): "
                              "reused; --overwrite makes it again", highlight=False, soft_wrap=True)
        if as_json:
            from spsr.data.store import store_info

            typer.echo(json.dumps({**store_info(output).to_dict(), "reused": True}, indent=2))
        return
    if default_note and not quiet and not as_json:
        err_console.print(default_note, highlight=False, soft_wrap=True)
    output.parent.mkdir(parents=True, exist_ok=True)

    plain_log = not quiet and not as_json and not err_console.is_terminal
    bar = progress(
        quiet or as_json,
        TextColumn("{task.fields[patches]:,} patches"),
        TextColumn("{task.fields[rate]:.0f} patches/s"),
        unit="img",
    )
    started = time.perf_counter()
    state = {"base": 0, "next_log": 1.0}

    with bar:
        task = bar.add_task("prepare-data", total=total, patches=0, rate=0.0)

        def on_progress(p: WriteProgress) -> None:
            if p.images_done == p.resumed_from:  # the start
                state["base"] = p.patches
                if p.restarted and not quiet:
                    err_console.print(
                        f"note: discarded an interrupted run's partial file ({p.restarted})"
                    )
                if p.resumed_from and not quiet:
                    err_console.print(
                        f"resuming an interrupted run after "
                        f"{p.resumed_from}/{p.images_total} images"
                    )
            elapsed = max(time.perf_counter() - started, 1e-9)
            rate = (p.patches - state["base"]) / elapsed
            bar.update(task, completed=p.images_done, patches=p.patches, rate=rate)
            if plain_log and (
                p.images_done >= state["next_log"] or p.images_done == p.images_total
            ):
                state["next_log"] = p.images_done + max(1, p.images_total // 10)
                err_console.print(
                    f"prepare-data: {p.images_done}/{p.images_total} images, "
                    f"{p.patches:,} patches, {rate:.0f} patches/s",
                    highlight=False,
                )

        try:
            summary = write_store(
                found.images,
                output,
                options,
                workers=workers,
                overwrite=overwrite,
                missing=found.missing,
                creation_args=creation_args,
                on_progress=on_progress,
            )
        except KeyboardInterrupt:
            bar.stop()
            err_console.print("[yellow]interrupted:[/] run the same command again to resume")
            raise typer.Exit(130) from None
    _report(summary, as_json, quiet)
