"""``spsr train DATA --variant esrgan|g -o RUN``: adversarial training (ESRGAN, SPSR-G, ...)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from spsr.run_folder import RunFolder
from spsr_cli._common import console, err_console, guarded, model_fetching

if TYPE_CHECKING:
    from spsr.train.engine import TrainResult

# How a run stopped by a signal exits (its state saved): 128 + the signal, as a shell reports a
# process killed by it; SLURM's SIGUSR1 pre-emption warning exits as SIGTERM does, so a job script
# checks one code before it requeues.
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGUSR1": 143}

# Options shared by ``train`` and ``pretrain-psnr`` (all default None: "not given").
Output = Annotated[Path, typer.Option("--output", "-o", help="Run folder (created; holds config, log, state, weights).")]
Data = Annotated[Optional[Path], typer.Argument(help="HDF5 patch store from `spsr prepare-data` (optional with --resume).", show_default=False)]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in -o from its last saved state.")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="TOML file with configuration sections (model, d, optim, loss, data, run).", show_default=False)]
Init = Annotated[Optional[str], typer.Option("--init", help="Start the generator from a run folder or any checkpoint; its architecture and size (nf, nb, gc, backbone, scale, options) come from it unless given. An RRDB, EDSR or SRResNet init fills the SR branch of SPSR.", show_default=False)]
Iterations = Annotated[Optional[int], typer.Option("--iterations", help="Total iterations.", show_default=False)]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Global batch size (split over processes).", show_default=False)]
LrPatch = Annotated[Optional[int], typer.Option("--lr-patch", help="LR crop size, at a random position inside each stored patch (default: 32, or the whole stored patch when it is not larger).", show_default=False)]
LrG = Annotated[Optional[float], typer.Option("--lr", help="Generator learning rate.", show_default=False)]
Milestones = Annotated[Optional[str], typer.Option("--milestones", help="Iterations at which learning rates halve, e.g. 50000,100000,200000,300000.", show_default=False)]
Scale = Annotated[Optional[int], typer.Option("--scale", help="Upscaling factor (must match the data).", show_default=False)]
Nf = Annotated[Optional[int], typer.Option("--nf", help="Generator feature channels.", show_default=False)]
Nb = Annotated[Optional[int], typer.Option("--nb", help="Generator blocks.", show_default=False)]
Backbone = Annotated[Optional[str], typer.Option("--backbone", help="rrdb | edsr | srresnet: the SR branch of SPSR, or the plain generator.", show_default=False)]
Ema = Annotated[Optional[float], typer.Option("--ema", help="EMA decay of the generator (e.g. 0.999; 0 = off). The EMA weights are what gets saved.", show_default=False)]
Val = Annotated[Optional[Path], typer.Option("--val", help="Folder of HR images to validate on (default: the store's val images, if any).", show_default=False)]
ValEvery = Annotated[Optional[int], typer.Option("--val-every", help="Validate every N iterations.", show_default=False)]
ValLimit = Annotated[Optional[int], typer.Option("--val-limit", help="Validate on at most N images.", show_default=False)]
CheckpointEvery = Annotated[Optional[int], typer.Option("--checkpoint-every", help="Save state and weights every N iterations.", show_default=False)]
CheckpointMinutes = Annotated[Optional[float], typer.Option("--checkpoint-minutes", help="Also save them every N minutes (default 30; 0 = off), so a hard kill loses at most that much.", show_default=False)]
LogEvery = Annotated[Optional[int], typer.Option("--log-every", help="Log averaged losses every N iterations.", show_default=False)]
Amp = Annotated[Optional[str], typer.Option("--amp", help="auto | off | bf16 | fp16 (fp16: CUDA only).", show_default=False)]
ChannelsLast = Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="Channels-last memory format (default: on with autocast or CUDA).", show_default=False)]
Device = Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda | cuda:N.", show_default=False)]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed.", show_default=False)]
Workers = Annotated[Optional[int], typer.Option("--workers", help="Data-loader workers per process.", show_default=False)]
Moa = Annotated[Optional[bool], typer.Option("--moa/--no-moa", help="MoA: a mixture of augmentations (blend, rgb, mixup, cutmix, cutmixup, cutblur) on every batch (default: on for variant u).", show_default=False)]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Any configuration key: --set loss.pixel=0.02 (repeatable).", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


# The --help text is written here rather than read from the variant registry, which imports
# torch and every stage: `spsr --help` and shell completion stay fast. A test keeps it in step.
VARIANT_SUMMARIES = {
    "esrgan": "ESRGAN: L1 + VGG19 perceptual + RaGAN (RRDBNet)",
    "g": "SPSR-G: ESRGAN losses + gradient pixel/adversarial + branch L1 (SPSR generator)",
    "u": "the U-Net follow-up: SPSR (desubpixel head) + U-Net D (hinge, CutMix) + LPIPS + feature matching"
    " + gradient losses, MoA",
    "p": "SPSR-P: L1 + perceptual + structure loss on an NSE by contrastive prediction",
    "j": "SPSR-J: as p, with an NSE trained by jigsaw puzzles",
    "r": "SPSR-R: as p, with a randomly initialised NSE",
    "vgg": "SPSR-VGG: as p, with ImageNet VGG19 conv5_4 features",
    "resnet": "SPSR-ResNet: as p, with ImageNet ResNet18 conv4_2 features",
}
_VARIANT_HELP = "Method (default g): " + "; ".join(f"{k}: {v}" for k, v in VARIANT_SUMMARIES.items())


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


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_training(
    variant: str | None,
    output: Path,
    resume: bool,
    config_file: Path | None,
    overrides: dict[str, Any],
    set_options: list[str] | None,
    quiet: bool,
    as_json: bool,
    arch: str | None = None,
    backbone: str | None = None,
    offline: bool = False,
) -> None:
    """Resolve the configuration, train, and report; exit 130/143 when stopped by a signal.

    Missing ImageNet weights are fetched into torchvision's cache before the first iteration
    (``offline``: never; every missing file is then reported in one error)."""
    from spsr.train.config import parse_set_options
    from spsr.train.engine import Trainer
    from spsr.train.log import ConsoleReporter, Reporter
    from spsr.train.resolve import resolve_config

    overrides = {**overrides, **parse_set_options(set_options)}
    cfg = resolve_config(variant, output, resume, config_file, backbone, overrides, arch)
    main = is_main_process()
    reporter: Reporter = ConsoleReporter(err_console, quiet=quiet or as_json) if main else Reporter()
    with model_fetching(quiet or as_json or not main, offline):
        result = Trainer(cfg, output, resume=resume, reporter=reporter).run()
    if main:
        _report(result, as_json)
    if result.interrupted:
        raise typer.Exit(EXIT_CODES.get(result.reason, 1))


def _report(result: TrainResult, as_json: bool) -> None:
    folder = RunFolder(result.run_dir)
    payload = {
        "run": str(result.run_dir), "iteration": result.iteration, "reason": result.reason,
        "weights": str(folder.model), "best": result.best,
    }
    if as_json:
        typer.echo(json.dumps(payload))
    if result.interrupted:
        again = [a for a in sys.argv[1:] if a != "--resume"]
        err_console.print(
            f"[yellow]stopped by {result.reason} at iteration {result.iteration}[/]; state saved in "
            f"{folder.state_dir}. Resume with: spsr {shlex.join(_resume_args(again, result.run_dir))}"
        f"{launcher_note()}",
            highlight=False, soft_wrap=True,
        )
        return
    if not as_json:
        best = result.best
        extra = f"; best validation PSNR {best['psnr']:.3f} dB at {best['iteration']}" if best else ""
        console.print(
            f"trained {result.iteration} iterations: {folder.model}{extra}",
            highlight=False, soft_wrap=True,
        )


def launcher_note() -> str:
    """Under torchrun, a reminder that the resume goes through the same launcher."""
    return " (under the same torchrun launcher)" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""


def _resume_args(argv: list[str], run_dir: Path) -> list[str]:
    command = argv[0] if argv and not argv[0].startswith("-") else "train"
    return [command, "--resume", "-o", str(run_dir)]


@guarded
def train(
    data: Data = None,
    output: Output = ...,  # type: ignore[assignment]
    variant: Annotated[Optional[str], typer.Option("--variant", "-V", help=_VARIANT_HELP, show_default=False)] = None,
    resume: Resume = False,
    config: ConfigFile = None,
    init: Init = None,
    iterations: Iterations = None,
    batch_size: BatchSize = None,
    lr_patch: LrPatch = None,
    lr: LrG = None,
    lr_d: Annotated[Optional[float], typer.Option("--lr-d", help="Discriminators' learning rate.", show_default=False)] = None,
    milestones: Milestones = None,
    scale: Scale = None,
    nf: Nf = None,
    nb: Nb = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help="spsr (default: with the gradient branch) | rrdb | edsr | srresnet: a plain generator trains the variant's losses without a gradient branch (TPAMI 2021 App. D: EDSR-G, EDSR-P).", show_default=False)] = None,
    backbone: Backbone = None,
    perceptual: Annotated[Optional[str], typer.Option("--perceptual", help="vgg | lpips | none (train without a perceptual loss). Default: vgg; lpips for variant u.", show_default=False)] = None,
    vgg_weights: Annotated[Optional[Path], typer.Option("--vgg-weights", help="VGG19 ImageNet weights file (default: torchvision's cache under TORCH_HOME).", show_default=False)] = None,
    lpips_weights: Annotated[Optional[Path], typer.Option("--lpips-weights", help="AlexNet ImageNet weights file for LPIPS (default: torchvision's cache under TORCH_HOME).", show_default=False)] = None,
    nse: Annotated[Optional[Path], typer.Option("--nse", help="Variants p / j: the structure extractor, a run of spsr pretrain-nse (or its nse.safetensors).", show_default=False)] = None,
    gradient_loss: Annotated[Optional[str], typer.Option("--gradient-loss", help="paper (L1, padding 1) | official (MSE, padding 2, as the official code).", show_default=False)] = None,
    fusion_warmup: Annotated[Optional[int], typer.Option("--fusion-warmup", help="Train only the fusion block for the first N iterations (official code: 5000).", show_default=False)] = None,
    ema: Ema = None,
    moa: Moa = None,
    val: Val = None,
    val_every: ValEvery = None,
    val_limit: ValLimit = None,
    checkpoint_every: CheckpointEvery = None,
    checkpoint_minutes: CheckpointMinutes = None,
    log_every: LogEvery = None,
    amp: Amp = None,
    channels_last: ChannelsLast = None,
    device: Device = None,
    seed: Seed = None,
    workers: Workers = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any configuration key: --set loss.pixel=0.02 (repeatable).", show_default=False)] = None,
    offline: Annotated[bool, typer.Option("--offline", help="No network access (as SPSR_OFFLINE=1): ImageNet weights must already be in the cache or given by path.")] = False,
    quiet: Quiet = False,
    as_json: JsonOut = False,
) -> None:
    """Train a perceptual SR model: ESRGAN (--variant esrgan), SPSR-G (--variant g) or the U-Net follow-up's
    U-Net variant (--variant u: U-Net D, LPIPS, feature matching, desubpixel head, MoA).

    Losses and weights as the papers (SPSR-G: pixel L1 0.01, VGG19 conv5_4 L1 1, RaGAN 0.005,
    gradient pixel 0.01, gradient RaGAN 0.005, branch L1 0.5), Adam 1e-4 halved at
    50k/100k/200k/300k. Start from a PSNR pre-training with --init. Ctrl-C saves a resumable state.
    """
    overrides = {
        "data.path": absolute_path(data),
        "run.init": init_source(init), "run.iterations": iterations, "data.batch_size": batch_size,
        "data.lr_patch": lr_patch, "optim.lr_g": lr, "optim.lr_d": lr_d,
        "optim.milestones": milestones, "model.scale": scale, "model.nf": nf, "model.nb": nb,
        "loss.perceptual_net": perceptual,
        "loss.vgg_weights": absolute_path(vgg_weights),
        "loss.lpips_weights": absolute_path(lpips_weights), "data.moa": moa,
        "loss.gradient_form": gradient_loss, "structure.nse": absolute_path(nse), "run.fusion_warmup": fusion_warmup, "run.ema": ema,
        "data.val_dir": absolute_path(val), "data.val_every": val_every,
        "data.val_limit": val_limit, "run.checkpoint_every": checkpoint_every,
        "run.checkpoint_minutes": checkpoint_minutes,
        "run.log_every": log_every, "run.amp": amp, "run.channels_last": on_off(channels_last),
        "run.device": device, "run.seed": seed, "data.workers": workers,
    }
    run_training(variant, output, resume, config, overrides, set_, quiet, as_json, arch=arch,
                 backbone=backbone, offline=offline)
