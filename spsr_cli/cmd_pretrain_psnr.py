"""``spsr pretrain-psnr DATA -o RUN``: L1 pre-training of any generator (the init of GAN training)."""

from __future__ import annotations

from spsr_cli._common import guarded
from spsr_cli.cmd_train import run_training
from spsr_cli.training_options import (
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
    PixelLoss,
    PsnrArch,
    PsnrBackbone,
    Quiet,
    Resume,
    Scale,
    Seed,
    SetOpt,
    TensorBoard,
    Val,
    ValEvery,
    ValLimit,
    Wandb,
    Workers,
    training_overrides,
)


@guarded
def pretrain_psnr(
    data: Data = None,
    output: Output = None,
    arch: PsnrArch = None,
    backbone: PsnrBackbone = None,
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
    pixel_loss: PixelLoss = None,
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
    tensorboard: TensorBoard = None,
    wandb: Wandb = None,
    quiet: Quiet = False,
    as_json: JsonOut = False,
) -> None:
    """Pre-train a generator with the L1 loss (ESRGAN's PSNR-oriented schedule: lr 2e-4 halved
    every 200k iterations, 1M iterations). The run folder is what `spsr train --init` takes; without
    DATA and -o it trains on the one store in data/ and writes runs/psnr, where spsr train finds it.

    A short run (a CPU, a few hundred or thousand iterations) gives a useful model only if it
    learns the residual over the bicubic upsampling: add --arch spsr --set
    model.extra.image_skip=true (the built-in psnr model: 29.6 instead of 25.7 dB on Set5 after
    250 iterations of the same run).
    """
    overrides = training_overrides(locals())
    run_training("psnr", output, resume, config, overrides, set_, quiet, as_json, arch=arch,
                 backbone=backbone, tensorboard=tensorboard, wandb=wandb, command="pretrain-psnr")
