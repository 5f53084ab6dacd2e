"""``spsr plot RUN [RUN...] -o curves.png``: loss and validation curves of runs from their logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spsr_cli._common import console, guarded


@guarded
def plot(
    runs: Annotated[list[Path], typer.Argument(
        help="Training run folders (or their log.jsonl files); one colour each.",
        show_default=False, metavar="RUN")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Picture to write: .png, .jpg or .webp.", show_default=False)],
    title: Annotated[str, typer.Option(help="Text above the curves.")] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success.")] = False,
) -> None:
    """Draw the loss and validation curves of one or more runs from their log.jsonl, one panel per
    loss term and per validation score (for machines without TensorBoard; with it, use
    tensorboard --logdir runs/).

    Example: spsr plot runs/psnr runs/spsr_g -o curves.png
    """
    from spsr.train.curves import save_curves

    written = save_curves(runs, output, title=title)
    if not quiet:
        console.print(f"curves of {len(runs)} run(s): {written}", highlight=False, soft_wrap=True)
