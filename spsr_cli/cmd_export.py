"""``spsr export``: a model as ONNX (``.onnx``) or OpenVINO IR (``.xml`` + ``.bin``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spsr_cli._common import ModelScaleOption, console, fail, guarded, warn


def _parse_size(size: str) -> tuple[int, int] | None:
    if size == "dynamic":
        return None
    parts = size.lower().replace("×", "x").split("x")
    try:
        h, w = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        h = w = 0
    if h < 1 or w < 1:
        raise fail(f"--size {size!r}: give dynamic, N (N×N) or HxW in input pixels, e.g. 128x96")
    return h, w


@guarded
def export(
    weights: Annotated[str, typer.Argument(
        help="Weights file, run folder, or built-in name (default, psnr).")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="The file to write: .onnx (ONNX) or .xml (OpenVINO IR, with a .bin "
        "beside it).")],
    model_scale: ModelScaleOption = None,
    gradient: Annotated[bool, typer.Option(
        "--gradient", help="A second output 'grad': the gradient branch (SPSR models).")] = False,
    size: Annotated[str, typer.Option(
        help="Input size: dynamic (any height and width) or a fixed N or HxW in input pixels.")] = "dynamic",
    batch: Annotated[int | None, typer.Option(
        min=1, help="A fixed batch size (default: dynamic).", show_default=False)] = None,
) -> None:
    """Export a model for ONNX Runtime, OpenVINO or any ONNX consumer, in fp32.

    The graph takes 'lr' (N×3×H×W RGB in [0, 1]) and gives 'sr' (N×3×sH×sW) and, with
    --gradient, 'grad'; the file's metadata holds the architecture, scale, spsr version and the
    weights' provenance.

    [bold]Examples[/]

      spsr export default -o spsr_psnr_x4.onnx
      spsr export runs/spsr_g -o spsr_g.xml --gradient --size 128
    """
    from spsr.engines.export import export_format, export_model
    from spsr.infer import load_model

    export_format(output)  # an unknown format fails before the model is loaded
    fixed = _parse_size(size)
    loaded = load_model(weights, model_scale=model_scale)
    for line in loaded.warnings:
        warn(line)
    written = export_model(loaded, output, with_gradient=gradient, fixed_size=fixed, batch=batch)
    console.print(f"wrote {' and '.join(str(p) for p in written)} ({loaded.spec.describe()})",
                  highlight=False, soft_wrap=True)
