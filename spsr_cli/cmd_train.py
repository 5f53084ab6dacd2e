"""``spsr train DATA --variant esrgan|g -o RUN``: adversarial training (ESRGAN, SPSR-G, ...)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from spsr.run_folder import RunFolder
from spsr.variant_catalog import trained_by
from spsr_cli._common import complete, console, err_console, guarded, model_fetching, warn
from spsr_cli.training_options import (
    Amp,
    Backbone,
    BatchSize,
    ChannelsLast,
    CheckpointEvery,
    CheckpointMinutes,
    ConfigFile,
    Data,
    Device,
    Ema,
    FusionWarmup,
    GradientLoss,
    Init,
    Iterations,
    JsonOut,
    LogEvery,
    LpipsWeights,
    LrD,
    LrG,
    LrPatch,
    Milestones,
    Moa,
    Nb,
    Nf,
    NseRun,
    Offline,
    Output,
    Perceptual,
    Quiet,
    Resume,
    Scale,
    Seed,
    SetOpt,
    TensorBoard,
    TrainArch,
    Val,
    ValEvery,
    ValLimit,
    VggWeights,
    Wandb,
    Workers,
    training_overrides,
)

if TYPE_CHECKING:
    from spsr.train.engine import TrainResult

# How a run stopped by a signal exits (its state saved): 128 + the signal, as a shell reports a
# process killed by it; SLURM's SIGUSR1 pre-emption warning exits as SIGTERM does, so a job script
# checks one code before it requeues.
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143, "SIGUSR1": 143}

# Read from the torch-free variant catalog: `spsr --help` and shell completion stay fast.
_VARIANT_HELP = "Method (default g): " + "; ".join(
    f"{v.name}: {v.summary}" for v in trained_by("train")
)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def explicit_keys(
    overrides: dict[str, Any], set_options: list[str] | None, config_file: Path | None
) -> tuple[set[str], dict[str, Any]]:
    """The dotted keys the user set (flags, ``--set``, ``--config``), and the config file's data."""
    from spsr.train.config import load_toml, parse_set_options

    file_data = load_toml(config_file) if config_file is not None else {}
    keys = set(overrides) | set(parse_set_options(set_options))
    for section, values in file_data.items():
        if isinstance(values, dict):
            keys |= {f"{section}.{key}" for key in values}
    return keys, file_data


def say_defaults(notes: list[str], warnings: list[str], quiet: bool) -> None:
    """Print what the working folder supplied (notes unless quiet; warnings always)."""
    if not is_main_process():
        return
    if not quiet:
        for line in notes:
            err_console.print(line, highlight=False, soft_wrap=True)
    for line in warnings:
        warn(line)


def workspace_paths(
    command: str,
    variant: str | None,
    output: Path | None,
    resume: bool,
    config_file: Path | None,
    overrides: dict[str, Any],
    set_options: list[str] | None,
    quiet: bool,
) -> Path:
    """Fill the run folder, store, init and NSE from the working folder (:mod:`spsr.workspace`)
    where none was given; adds them to ``overrides`` and returns the run folder."""
    from spsr.checkpoints.io import weights_name_note
    from spsr.workspace import Workspace, training_defaults

    given, file_data = explicit_keys(overrides, set_options, config_file)
    init = overrides.get("run.init")
    shadowed = weights_name_note(str(init), option="--init") if init is not None else None
    name = variant or str(file_data.get("variant") or "g")
    line = "spsr pretrain-psnr" if command == "pretrain-psnr" else f"spsr train --variant {name}"
    from spsr.train.config import parse_set_options

    scale = (parse_set_options(set_options).get("model.scale") or overrides.get("model.scale")
             or file_data.get("model", {}).get("scale") or 4)  # the store is at the model's scale
    found = training_defaults(
        Workspace.here(), name=name, command=line, output=output, resume=resume, given=given,
        scale=int(scale) if str(scale).isdigit() else None, variant=name,  # bad: validate says
        wants_init=command == "train",
    )
    for key, path in (("data.path", found.data), ("run.init", found.init),
                      ("structure.nse", found.nse)):
        if path is not None:
            overrides[key] = str(path.resolve())
    say_defaults(found.notes, found.warnings + ([shadowed] if shadowed else []), quiet)
    return found.output


def run_training(
    variant: str | None,
    output: Path | None,
    resume: bool,
    config_file: Path | None,
    overrides: dict[str, Any],
    set_options: list[str] | None,
    quiet: bool,
    as_json: bool,
    arch: str | None = None,
    backbone: str | None = None,
    offline: bool = False,
    command: str = "train",
    tensorboard: bool | None = None,
    wandb: str | None = None,
) -> None:
    """Resolve the configuration, train, and report; exit 130/143 when stopped by a signal.

    Paths not given come from the working folder (:func:`workspace_paths`). Missing ImageNet
    weights are fetched into torchvision's cache before the first iteration (``offline``: never;
    every missing file is then reported in one error). ``tensorboard`` and ``wandb``: the run
    monitors (:func:`spsr.train.monitor.make_monitors`), main process only."""
    from spsr.atomic import check_writable
    from spsr.train.config import parse_set_options
    from spsr.train.engine import Trainer
    from spsr.train.log import ConsoleReporter, Reporter
    from spsr.train.monitor import make_monitors
    from spsr.train.resolve import RunLayers, resolve_run

    output = workspace_paths(command, variant, output, resume, config_file, overrides,
                             set_options, quiet or as_json)
    layers = RunLayers(variant, config_file, arch, backbone,
                       [overrides, parse_set_options(set_options)])
    cfg = resolve_run(layers, output, resume)
    check_writable(output)  # a read-only or full run folder fails before any model is built
    main = is_main_process()
    reporter: Reporter = ConsoleReporter(err_console, quiet=quiet or as_json) if main else Reporter()
    monitors = make_monitors(tensorboard, wandb) if main else []
    with resume_hint_on_write_error(output), model_fetching(quiet or as_json or not main, offline):
        result = Trainer(cfg, output, resume=resume, reporter=reporter, monitors=monitors).run()
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


@contextlib.contextmanager
def resume_hint_on_write_error(run_dir: Path) -> Iterator[None]:
    """A failed write (full disk, ...) of a run that has a checkpoint ends with the command that
    resumes it, once the cause is fixed."""
    from spsr.errors import WriteError
    from spsr.train.engine import has_checkpoint

    try:
        yield
    except WriteError as exc:
        if not has_checkpoint(run_dir):
            raise
        again = [a for a in sys.argv[1:] if a != "--resume"]
        resume_cmd = shlex.join(_resume_args(again, run_dir))
        raise exc.with_note(
            exc.note, f"{exc.remedy}, then continue with: spsr {resume_cmd}{launcher_note()}"
        ) from None


def launcher_note() -> str:
    """Under torchrun, a reminder that the resume goes through the same launcher."""
    return " (under the same torchrun launcher)" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""


def _resume_args(argv: list[str], run_dir: Path) -> list[str]:
    command = argv[0] if argv and not argv[0].startswith("-") else "train"
    return [command, "--resume", "-o", str(run_dir)]


@guarded
def train(
    data: Data = None,
    output: Output = None,
    variant: Annotated[str | None, typer.Option(
        "--variant", "-V", help=_VARIANT_HELP, show_default=False,
        autocompletion=complete(*(v.name for v in trained_by("train"))))] = None,
    resume: Resume = False,
    config: ConfigFile = None,
    init: Init = None,
    iterations: Iterations = None,
    batch_size: BatchSize = None,
    lr_patch: LrPatch = None,
    lr: LrG = None,
    lr_d: LrD = None,
    milestones: Milestones = None,
    scale: Scale = None,
    nf: Nf = None,
    nb: Nb = None,
    arch: TrainArch = None,
    backbone: Backbone = None,
    perceptual: Perceptual = None,
    vgg_weights: VggWeights = None,
    lpips_weights: LpipsWeights = None,
    nse: NseRun = None,
    gradient_loss: GradientLoss = None,
    fusion_warmup: FusionWarmup = None,
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
    set_: SetOpt = None,
    offline: Offline = False,
    tensorboard: TensorBoard = None,
    wandb: Wandb = None,
    quiet: Quiet = False,
    as_json: JsonOut = False,
) -> None:
    """Train a perceptual SR model: ESRGAN (--variant esrgan), SPSR-G (--variant g) or the U-Net follow-up's
    U-Net variant (--variant u: U-Net D, LPIPS, feature matching, desubpixel head, MoA).

    Losses and weights as the papers (SPSR-G: pixel L1 0.01, VGG19 conv5_4 L1 1, RaGAN 0.005,
    gradient pixel 0.01, gradient RaGAN 0.005, branch L1 0.5), Adam 1e-4 halved at
    50k/100k/200k/300k. Starts from runs/psnr (spsr pretrain-psnr) when it exists, as the papers
    start from a PSNR-oriented model; --init overrides. Without DATA it trains on the one store
    in data/ and writes runs/<variant>. Ctrl-C saves a resumable state.
    """
    overrides = training_overrides(locals())
    run_training(variant, output, resume, config, overrides, set_, quiet, as_json, arch=arch,
                 backbone=backbone, offline=offline, tensorboard=tensorboard, wandb=wandb)
