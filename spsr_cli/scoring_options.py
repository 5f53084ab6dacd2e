"""The scoring options, declared once: ``spsr eval`` and ``spsr ablate`` take them from here.

``--protocol`` and the single conventions that override it become one
:class:`~spsr.metrics.conventions.Scoring` (:func:`spsr.metrics.conventions.resolve_protocol`);
the metric list and the metrics' model files complete the
:class:`~spsr.metrics.registry.EvalSettings`. The help texts that list metrics read the metric
registry. Where a command words an option's help for its own context (``ablate``: the table's
columns, the study's default), the variant is declared here too, next to the shared one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from spsr.metrics.registry import metrics_help
from spsr_cli._common import PRECISIONS, PROTOCOLS, complete

#: The registered metrics, for the ``--metrics`` help texts.
METRIC_CHOICES = f"{metrics_help()}, or all"
#: ``--metrics`` of ``spsr eval`` (default ``psnr,ssim``).
MetricsOption = Annotated[str, typer.Option("--metrics", help=f"Comma list of {METRIC_CHOICES}.")]
#: ``--metrics`` of ``spsr ablate``: the table's columns, by default the study's own.
AblateMetricsOption = Annotated[str | None, typer.Option(
    "--metrics", help=f"The table's columns: comma list of {METRIC_CHOICES} (default: the study's, "
    "e.g. lpips,psnr,ssim).", show_default=False)]

ProtocolOption = Annotated[str, typer.Option(
    "--protocol",
    help="Scorer conventions: spsr (the CVPR 2020 / TPAMI 2021 tables: SSIM after ssim.m's automatic "
    "downsampling) or basicsr (BasicSR's scripts and most SR tables: SSIM at full resolution). "
    "--crop-border, --y-channel/--rgb, --ssim-downsample and --pi-border override single conventions.",
    autocompletion=complete(*PROTOCOLS))]
CropBorderOption = Annotated[int | None, typer.Option(
    "--crop-border", min=0, help="Border shaved for PSNR/SSIM (protocol: the scale).", show_default=False)]
YChannelOption = Annotated[bool | None, typer.Option(
    "--y-channel/--rgb", help="PSNR/SSIM on the Y channel (protocol) or on RGB.", show_default=False)]
SsimDownsampleOption = Annotated[bool | None, typer.Option(
    "--ssim-downsample/--no-ssim-downsample",
    help="ssim.m's automatic downsampling before SSIM (protocol spsr: on, basicsr: off).", show_default=False)]
PiBorderOption = Annotated[int | None, typer.Option(
    "--pi-border", min=0, help="Border shaved for NIQE, Ma and PI (protocol: 4, PIRM).", show_default=False)]

LpipsBackboneOption = Annotated[Path | None, typer.Option(
    "--lpips-backbone",
    help="AlexNet ImageNet weights for the LPIPS metric (spsr ablate: for the LPIPS loss too). "
    "Default: torchvision's cache under TORCH_HOME, fetched on first use.", show_default=False)]
MaModelOption = Annotated[Path | None, typer.Option(
    "--ma-model",
    help="Ma et al.'s model.mat for ma and pi (default: $SPSR_CACHE/nrqm/model.mat, else "
    "~/.cache/spsr/nrqm/model.mat, fetched on first use).", show_default=False)]

#: How the models are run to make the images scored.
ScoringTileOption = Annotated[int, typer.Option(
    "--tile", min=0, help="Tile size in LR pixels for upscaling the images scored (0: whole image).")]
ScoringPrecisionOption = Annotated[str, typer.Option(
    "--precision", help="Precision of the upscaling scored: auto, fp32, bf16 or fp16 (CUDA).",
    autocompletion=complete(*PRECISIONS))]
