"""``spsr pretrain-psnr DATA -o RUN``: L1 pre-training of any generator (the init of GAN training)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from spsr_cli._common import guarded
from spsr_cli.cmd_train import (
    Amp,
    BatchSize,
    ChannelsLast,
    CheckpointEvery,
    CheckpointMinutes,
    ConfigFile,
    Data,
    Device,
    Ema,
    Init,
    Iterations,
    JsonOut,
    LogEvery,
    LrG,
    LrPatch,
    Milestones,
    Moa,
    Nb,
    Nf,
    Output,
    Quiet,
    Resume,
    Scale,
    Seed,
    SetOpt,
    Val,
    ValEvery,
    ValLimit,
    Workers,
    absolute_path,
    init_source,
    on_off,
    run_training,
)


@guarded
def pretrain_psnr(
    data: Data = None,
    output: Output = ...,  # type: ignore[assignment]
    arch: Annotated[Optional[str], typer.Option("--arch", help="rrdb (default) | spsr | edsr | srresnet.", show_default=False)] = None,
    backbone: Annotated[Optional[str], typer.Option("--backbone", help="SR-branch backbone of --arch spsr: rrdb | edsr | srresnet.", show_default=False)] = None,
    resume: Resume = False,
    config: ConfigFile = None,
    init: Init = None,
    iterations: Iterations = None,
    batch_size: BatchSize = None,
    lr_patch: LrPatch = None,
    lr: LrG = None,
    milestones: Milestones = None,
    scale: Scale = None,
    nf: Nf = None,
    nb: Nb = None,
    pixel_loss: Annotated[Optional[str], typer.Option("--pixel-loss", help="l1 (default) | l2 | charbonnier.", show_default=False)] = None,
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
    quiet: Quiet = False,
    as_json: JsonOut = False,
) -> None:
    """Pre-train a generator with the L1 loss (ESRGAN's PSNR-oriented schedule: lr 2e-4 halved
    every 200k iterations, 1M iterations). The run folder is what `spsr train --init` takes."""
    overrides = {
        "data.path": absolute_path(data),
        "run.init": init_source(init), "run.iterations": iterations, "data.batch_size": batch_size,
        "data.lr_patch": lr_patch, "optim.lr_g": lr, "optim.milestones": milestones,
        "model.scale": scale, "model.nf": nf, "model.nb": nb, "loss.pixel_criterion": pixel_loss,
        "run.ema": ema, "data.val_dir": absolute_path(val),
        "data.val_every": val_every, "data.val_limit": val_limit,
        "run.checkpoint_every": checkpoint_every, "run.checkpoint_minutes": checkpoint_minutes,
        "run.log_every": log_every, "run.amp": amp,
        "run.channels_last": on_off(channels_last), "run.device": device, "run.seed": seed,
        "data.workers": workers, "data.moa": moa,
    }
    run_training("psnr", output, resume, config, overrides, set_, quiet, as_json, arch=arch, backbone=backbone)
