"""The training options, declared once: ``spsr train``, ``pretrain-psnr``, ``pretrain-nse`` and
``ablate`` take them from here, and :func:`training_overrides` maps them to configuration keys.

Every option defaults to None, "not given", so the configuration's layers underneath (preset,
architecture, ``--config``, ``--set``) decide; see :func:`spsr.train.resolve.resolve_run`.
Where a command words an option's help for its own context (``ablate``: "of every
configuration"), the variant is declared here too, next to the shared one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from spsr_cli._common import AMP_MODES, DEVICES, complete


def absolute_path(path: Path | None) -> str | None:
    """Paths are stored absolute in the run's config, so ``--resume`` works from anywhere."""
    return str(path.expanduser().resolve()) if path is not None else None


def init_source(init: str | None) -> str | None:
    """An existing path made absolute; anything else (a built-in weights name) as given."""
    if init is None:
        return None
    path = Path(init).expanduser()
    return str(path.resolve()) if path.exists() else init


def on_off(flag: bool | None) -> str | None:
    return None if flag is None else ("on" if flag else "off")


def _same(value: Any) -> Any:
    return value


#: Parameter name of a training option → (its configuration key, how its value is stored).
OPTION_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "data": ("data.path", absolute_path),
    "init": ("run.init", init_source),
    "iterations": ("run.iterations", _same),
    "batch_size": ("data.batch_size", _same),
    "lr_patch": ("data.lr_patch", _same),
    "lr": ("optim.lr_g", _same),
    "lr_d": ("optim.lr_d", _same),
    "milestones": ("optim.milestones", _same),
    "scale": ("model.scale", _same),
    "nf": ("model.nf", _same),
    "nb": ("model.nb", _same),
    "perceptual": ("loss.perceptual_net", _same),
    "pixel_loss": ("loss.pixel_criterion", _same),
    "vgg_weights": ("loss.vgg_weights", absolute_path),
    "lpips_weights": ("loss.lpips_weights", absolute_path),
    "gradient_loss": ("loss.gradient_form", _same),
    "nse": ("structure.nse", absolute_path),
    "fusion_warmup": ("run.fusion_warmup", _same),
    "ema": ("run.ema", _same),
    "moa": ("data.moa", _same),
    "val": ("data.val_dir", absolute_path),
    "val_every": ("data.val_every", _same),
    "val_limit": ("data.val_limit", _same),
    "checkpoint_every": ("run.checkpoint_every", _same),
    "checkpoint_minutes": ("run.checkpoint_minutes", _same),
    "log_every": ("run.log_every", _same),
    "amp": ("run.amp", _same),
    "channels_last": ("run.channels_last", on_off),
    "device": ("run.device", _same),
    "seed": ("run.seed", _same),
    "workers": ("data.workers", _same),
    # pretrain-nse: the [nse] section
    "sampling": ("nse.sampling", _same),
    "nse_augment": ("nse.augment", _same),
    "crop": ("nse.crop", _same),
    "crops_per_image": ("nse.crops_per_image", _same),
    "epochs": ("nse.epochs", _same),
    "lr_step_epochs": ("nse.lr_step_epochs", _same),
}


def training_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration keys the given training options set (options not given: left out).

    Args:
        values: a command's parameters by name (``locals()`` of the command); names that are
            not training options (``output``, ``quiet``, ...) are ignored.
    """
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in OPTION_KEYS and value is not None:
            key, store = OPTION_KEYS[name]
            out[key] = store(value)
    return out


# Shared by train, pretrain-psnr and pretrain-nse.
Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Run folder (created; holds config, log, state, weights). \\[default: runs/<variant>: "
        "runs/psnr, runs/g, runs/nse-<task>; never one holding a run, unless --resume]",
        show_default=False,
    ),
]
Data = Annotated[
    Path | None,
    typer.Argument(
        help="HDF5 patch store from `spsr prepare-data` (optional with --resume). \\[default: the "
        "one store in data/ for the scale]",
        show_default=False,
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the run in -o from its last saved state.",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML file with configuration sections (model, d, optim, loss, data, run).",
        show_default=False,
    ),
]
Init = Annotated[
    str | None,
    typer.Option(
        "--init",
        help="Start the generator from a run folder or any checkpoint; its architecture and size "
        "(nf, nb, gc, backbone, scale, options) come from it unless given. An RRDB, EDSR or "
        "SRResNet init fills the SR branch of SPSR.",
        show_default=False,
    ),
]
Iterations = Annotated[
    int | None,
    typer.Option(
        "--iterations",
        help="Total iterations.",
        show_default=False,
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        help="Global batch size (split over processes).",
        show_default=False,
    ),
]
LrPatch = Annotated[
    int | None,
    typer.Option(
        "--lr-patch",
        help="LR crop size, at a random position inside each stored patch (default: 32, or the "
        "whole stored patch when it is not larger).",
        show_default=False,
    ),
]
LrG = Annotated[
    float | None,
    typer.Option(
        "--lr",
        help="Generator learning rate.",
        show_default=False,
    ),
]
LrD = Annotated[
    float | None,
    typer.Option(
        "--lr-d",
        help="Discriminators' learning rate.",
        show_default=False,
    ),
]
Milestones = Annotated[
    str | None,
    typer.Option(
        "--milestones",
        help="Iterations at which learning rates halve, e.g. 50000,100000,200000,300000.",
        show_default=False,
    ),
]
Scale = Annotated[
    int | None,
    typer.Option(
        "--scale",
        help="Upscaling factor (must match the data).",
        show_default=False,
    ),
]
Nf = Annotated[
    int | None,
    typer.Option(
        "--nf",
        help="Generator feature channels.",
        show_default=False,
    ),
]
Nb = Annotated[int | None, typer.Option("--nb", help="Generator blocks.", show_default=False)]
Backbone = Annotated[
    str | None,
    typer.Option(
        "--backbone",
        autocompletion=complete("rrdb", "edsr", "srresnet"),
        help="rrdb | edsr | srresnet: the SR branch of SPSR, or the plain generator.",
        show_default=False,
    ),
]
Ema = Annotated[
    float | None,
    typer.Option(
        "--ema",
        help="EMA decay of the generator (e.g. 0.999; 0 = off). The EMA weights are what gets "
        "saved.",
        show_default=False,
    ),
]
Val = Annotated[
    Path | None,
    typer.Option(
        "--val",
        help="Folder of HR images to validate on (default: the store's val images, if any).",
        show_default=False,
    ),
]
ValEvery = Annotated[
    int | None,
    typer.Option(
        "--val-every",
        help="Validate every N iterations.",
        show_default=False,
    ),
]
ValLimit = Annotated[
    int | None,
    typer.Option(
        "--val-limit",
        help="Validate on at most N images.",
        show_default=False,
    ),
]
CheckpointEvery = Annotated[
    int | None,
    typer.Option(
        "--checkpoint-every",
        help="Save state and weights every N iterations.",
        show_default=False,
    ),
]
CheckpointMinutes = Annotated[
    float | None,
    typer.Option(
        "--checkpoint-minutes",
        help="Also save them every N minutes (default 30; 0 = off), so a hard kill loses at most "
        "that much.",
        show_default=False,
    ),
]
LogEvery = Annotated[
    int | None,
    typer.Option(
        "--log-every",
        help="Log averaged losses every N iterations.",
        show_default=False,
    ),
]
Amp = Annotated[
    str | None,
    typer.Option(
        "--amp",
        autocompletion=complete(*AMP_MODES),
        help="auto | off | bf16 | fp16 (fp16: CUDA only).",
        show_default=False,
    ),
]
ChannelsLast = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="Channels-last memory format (default: on with autocast or CUDA).",
        show_default=False,
    ),
]
Device = Annotated[
    str | None,
    typer.Option(
        "--device",
        autocompletion=complete(*DEVICES),
        help="auto | cpu | cuda | cuda:N.",
        show_default=False,
    ),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Random seed.", show_default=False)]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Data-loader workers per process.",
        show_default=False,
    ),
]
Moa = Annotated[
    bool | None,
    typer.Option(
        "--moa/--no-moa",
        help="MoA: a mixture of augmentations (blend, rgb, mixup, cutmix, cutmixup, cutblur) on "
        "every batch (default: on for variant u).",
        show_default=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Any configuration key: --set loss.pixel=0.02 (repeatable).",
        show_default=False,
    ),
]
Offline = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="No network access (as SPSR_OFFLINE=1): ImageNet weights must already be in the cache"
        " or given by path.",
    ),
]
TensorBoard = Annotated[
    bool | None,
    typer.Option(
        "--tensorboard/--no-tensorboard",
        help="Write TensorBoard event files into the run folder: losses, learning rates, speed, "
        "validation scores and crops (default: on when the tensorboard package is installed; "
        "watch with: tensorboard --logdir runs/).",
        show_default=False,
    ),
]
Wandb = Annotated[
    str | None,
    typer.Option(
        "--wandb",
        metavar="PROJECT",
        help="Also log to this Weights & Biases project (needs the wandb package; offline, "
        "in RUN/wandb, unless WANDB_MODE=online).",
        show_default=False,
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]

# spsr train only.
TrainArch = Annotated[
    str | None,
    typer.Option(
        "--arch",
        autocompletion=complete("spsr", "rrdb", "edsr", "srresnet"),
        help="spsr (default: with the gradient branch) | rrdb | edsr | srresnet: a plain generator"
        " trains the variant's losses without a gradient branch (TPAMI 2021 App. D: EDSR-G, "
        "EDSR-P).",
        show_default=False,
    ),
]
Perceptual = Annotated[
    str | None,
    typer.Option(
        "--perceptual",
        autocompletion=complete("vgg", "lpips", "none"),
        help="vgg | lpips | none (train without a perceptual loss). Default: vgg; lpips for "
        "variant u.",
        show_default=False,
    ),
]
VggWeights = Annotated[
    Path | None,
    typer.Option(
        "--vgg-weights",
        help="VGG19 ImageNet weights file (default: torchvision's cache under TORCH_HOME).",
        show_default=False,
    ),
]
LpipsWeights = Annotated[
    Path | None,
    typer.Option(
        "--lpips-weights",
        help="AlexNet ImageNet weights file for LPIPS (default: torchvision's cache under "
        "TORCH_HOME).",
        show_default=False,
    ),
]
NseRun = Annotated[
    Path | None,
    typer.Option(
        "--nse",
        help="Variants p / j: the structure extractor, a run of spsr pretrain-nse (or its "
        "nse.safetensors).",
        show_default=False,
    ),
]
GradientLoss = Annotated[
    str | None,
    typer.Option(
        "--gradient-loss",
        autocompletion=complete("paper", "official"),
        help="paper (L1, padding 1) | official (MSE, padding 2, as the official code).",
        show_default=False,
    ),
]
FusionWarmup = Annotated[
    int | None,
    typer.Option(
        "--fusion-warmup",
        help="Train only the fusion block for the first N iterations (official code: 5000).",
        show_default=False,
    ),
]

# spsr pretrain-psnr only.
PsnrArch = Annotated[
    str | None,
    typer.Option(
        "--arch",
        autocompletion=complete("rrdb", "spsr", "edsr", "srresnet"),
        help="rrdb (default) | spsr | edsr | srresnet.",
        show_default=False,
    ),
]
PsnrBackbone = Annotated[
    str | None,
    typer.Option(
        "--backbone",
        autocompletion=complete("rrdb", "edsr", "srresnet"),
        help="SR-branch backbone of --arch spsr: rrdb | edsr | srresnet.",
        show_default=False,
    ),
]
PixelLoss = Annotated[
    str | None,
    typer.Option(
        "--pixel-loss",
        autocompletion=complete("l1", "l2", "charbonnier"),
        help="l1 (default) | l2 | charbonnier.",
        show_default=False,
    ),
]

# spsr ablate: the same keys, worded for a grid of configurations.
AblateBatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        help="Global batch size of every configuration.",
        show_default=False,
    ),
]
AblateCheckpointEvery = Annotated[
    int | None,
    typer.Option(
        "--checkpoint-every",
        help="Save a resumable state every N iterations.",
        show_default=False,
    ),
]
AblateCheckpointMinutes = Annotated[
    float | None,
    typer.Option(
        "--checkpoint-minutes",
        help="Also save one every N minutes (default 30; 0 = off).",
        show_default=False,
    ),
]
AblateVggWeights = Annotated[
    Path | None,
    typer.Option(
        "--vgg-weights",
        help="VGG19 ImageNet weights for the perceptual loss (default: torchvision's cache).",
        show_default=False,
    ),
]
AblateDevice = Annotated[
    str | None,
    typer.Option(
        "--device",
        autocompletion=complete(*DEVICES),
        help="auto | cpu | cuda | cuda:N, for training and scoring.",
        show_default=False,
    ),
]
AblateAmp = Annotated[
    str | None,
    typer.Option(
        "--amp",
        autocompletion=complete(*AMP_MODES),
        help="Training precision: auto | off | bf16 | fp16.",
        show_default=False,
    ),
]
AblateWorkers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Data-loader workers.",
        show_default=False,
    ),
]
AblateSet = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Configuration key for every configuration: --set model.nf=32 (repeatable; a "
        "configuration's own changes win).",
        show_default=False,
    ),
]
