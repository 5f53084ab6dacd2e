"""``spsr pretrain-nse DATA -o RUN --task contrastive|jigsaw``: train or evaluate an NSE.

Training runs the ``nse`` stage on the training engine (resume, logs, progress, DDP under
torchrun) and writes ``RUN/nse.safetensors``, what ``spsr train --variant p|j --nse RUN`` takes.
``--evaluate`` scores the NSE of ``RUN`` as the papers do (TPAMI 2021 §5.2, App. B.2): a predictor and
a jigsaw classifier re-fitted on DATA with the extractor frozen, then contrastive top-1 accuracy on
200×200 crops (one target each) and jigsaw accuracy on 84×84 crops (one puzzle each) of each
``--test`` set, mean ± std over ``--repeats`` passes (``--eval-protocol many-anchors``: 16 per crop).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from spsr.errors import ConfigError
from spsr.nse import DEFAULT_FIT_STEPS, NSE_TASKS
from spsr.run_folder import RunFolder
from spsr_cli._common import complete, console, err_console, guarded, pick_device
from spsr_cli.cmd_train import (
    EXIT_CODES,
    explicit_keys,
    is_main_process,
    launcher_note,
    resume_hint_on_write_error,
    say_defaults,
)
from spsr_cli.training_options import (
    Amp,
    BatchSize,
    ChannelsLast,
    CheckpointEvery,
    CheckpointMinutes,
    ConfigFile,
    Device,
    Iterations,
    JsonOut,
    LogEvery,
    Milestones,
    Output,
    Quiet,
    Resume,
    Seed,
    SetOpt,
    TensorBoard,
    Wandb,
    Workers,
    training_overrides,
)


def _split_test(spec: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named after the folder) → (name, path)."""
    name, sep, path = spec.partition("=")
    if sep and name and not Path(spec).exists():
        return name, Path(path)
    p = Path(spec)
    return (p.resolve().name or spec), p


def _evaluate(
    run: Path, data: Path | None, tests: list[str], tasks: str, fit_steps: int, fit_images: int,
    repeats: int, protocol: str, device: str, seed: int, quiet: bool, as_json: bool,
) -> None:
    from spsr.nse.accuracy import evaluate_run
    from spsr.train.stages.nse import run_data_path

    if not tests:
        raise ConfigError("--evaluate needs at least one --test folder of images")
    chosen = [t.strip() for t in tasks.split(",") if t.strip()]
    if not chosen or any(t not in NSE_TASKS for t in chosen):
        raise ConfigError(f"--eval-tasks takes {', '.join(NSE_TASKS)} or both, not {tasks!r}")

    def say(message: str) -> None:
        if not (quiet or as_json):
            err_console.print(message, highlight=False)

    result = evaluate_run(
        run, data if data is not None else run_data_path(run), dict(map(_split_test, tests)),
        tasks=chosen, fit_steps=fit_steps, fit_images=fit_images, repeats=repeats,
        protocol=protocol, device=pick_device(device), seed=seed, say=say,
    )
    if as_json:
        typer.echo(json.dumps(result.payload))
        return
    table = Table(title=f"NSE validation of {run.name} (trained by {result.trained_task or '?'})")
    table.add_column("test set")
    for task in chosen:
        label = "contrastive top-1" if task == "contrastive" else "jigsaw accuracy"
        table.add_column(label, justify="right")
        table.add_column("chance", justify="right")
    for name in result.test_sets:
        row = [name]
        for task in chosen:
            hit = result.score(name, task)
            if hit is None:
                row += ["—", "—"]
            else:
                spread = f" ± {100 * hit.std:.2f}" if len(hit.repeat_accuracies) > 1 else ""
                row += [f"{100 * hit.accuracy:.2f}{spread} %", f"{100 * hit.chance:.3f} %"]
        table.add_row(*row)
    console.print(table)
    if result.skipped_sets:
        err_console.print(f"[yellow]no image large enough in:[/] {', '.join(result.skipped_sets)}")
    console.print(f"written: {result.written}", highlight=False)


def _report(run: Path, iteration: int, reason: str, as_json: bool) -> None:
    weights = RunFolder(run).nse
    if as_json:
        typer.echo(json.dumps({"run": str(run), "iteration": iteration, "reason": reason,
                               "weights": str(weights)}))
    if reason != "finished":
        err_console.print(
            f"[yellow]stopped by {reason} at iteration {iteration}[/]; state saved in "
            f"{RunFolder(run).state_dir}. Resume with: "
            f"spsr {shlex.join(['pretrain-nse', '--resume', '-o', str(run)])}{launcher_note()}",
            highlight=False, soft_wrap=True,
        )
    elif not as_json:
        console.print(f"trained {iteration} iterations: {weights}", highlight=False, soft_wrap=True)


def _opt(*names: str, **kwargs: Any) -> Any:
    """A Typer option whose default is shown only when it is not None."""
    return typer.Option(*names, show_default=kwargs.pop("show_default", False), **kwargs)


NseData = Annotated[Path | None, typer.Argument(
    help="Training images: a folder / image / list file, or a patch store made with large "
    "patches (prepare-data --patch 480). Optional with --resume and --evaluate. \\[default: the "
    "one store in data/]",
    show_default=False)]
Task = Annotated[str | None, _opt(
    "--task", "-t", help="contrastive (F_P, SPSR-P; default) | jigsaw (F_J, SPSR-J).",
    autocompletion=complete("contrastive", "jigsaw"))]
Sampling = Annotated[str | None, _opt(
    "--sampling", help="Contrastive neighbours: horizontal (default) | vertical | cross.",
    autocompletion=complete("horizontal", "vertical", "cross"))]
NseAugment = Annotated[str | None, _opt(
    "--augment", help="Training-crop augmentation: flips (default; left-right and up-down, "
    "which keep the sampling direction) | dihedral (also 90° rotations, which turn horizontal "
    "neighbours into vertical ones) | none.", autocompletion=complete("flips", "dihedral", "none"))]
Crop = Annotated[int | None, _opt(
    "--crop", help="Training crop side (default 420 contrastive, 84 jigsaw).")]
CropsPerImage = Annotated[int | None, _opt(
    "--crops-per-image", help="Random crops of each image (or stored patch) per epoch (1).")]
Epochs = Annotated[int | None, _opt(
    "--epochs", help="Training length in epochs, one crop per image or stored patch "
    "(default 60 contrastive, 90 jigsaw; --iterations overrides).")]
LrStepEpochs = Annotated[int | None, _opt(
    "--lr-step-epochs", help="Multiply the learning rate by 0.2 every N epochs "
    "(default 20 contrastive, 30 jigsaw; --milestones overrides).")]
NseLr = Annotated[float | None, _opt(
    "--lr", help="Learning rate (default 1e-3 contrastive, 1e-4 jigsaw).")]
NseInit = Annotated[str | None, _opt(
    "--init", help="Start the extractor from another pretrain-nse run.")]
Evaluate = Annotated[bool, typer.Option(
    "--evaluate", help="Score the NSE of -o RUN instead of training (a table; JSON in "
    "RUN/nse_eval.json).")]
Tests = Annotated[list[str] | None, _opt(
    "--test", help="--evaluate: a test set, FOLDER or NAME=FOLDER (repeatable).")]
EvalTasks = Annotated[str, typer.Option(
    "--eval-tasks", help="--evaluate: contrastive, jigsaw or contrastive,jigsaw.")]
FitSteps = Annotated[int, typer.Option(
    "--fit-steps", min=0, help="--evaluate: steps re-fitting each head on DATA, NSE frozen.")]
FitImages = Annotated[int, typer.Option(
    "--fit-images", min=1, help="--evaluate: at most N training images in memory for the re-fit.")]
Repeats = Annotated[int, typer.Option(
    "--repeats", min=1, help="--evaluate: passes over the test crops with new anchors.")]
EvalProtocol = Annotated[str, typer.Option(
    "--eval-protocol", help="--evaluate: paper (one target per contrastive crop, one puzzle per "
    "jigsaw crop, TPAMI 2021 §5.2) | many-anchors (16 of each per crop).")]


@guarded
def pretrain_nse(
    data: NseData = None,
    output: Output = None,
    task: Task = None,
    sampling: Sampling = None,
    nse_augment: NseAugment = None,
    crop: Crop = None,
    crops_per_image: CropsPerImage = None,
    epochs: Epochs = None,
    lr_step_epochs: LrStepEpochs = None,
    iterations: Iterations = None,
    batch_size: BatchSize = None,
    lr: NseLr = None,
    milestones: Milestones = None,
    resume: Resume = False,
    config: ConfigFile = None,
    init: NseInit = None,
    evaluate: Evaluate = False,
    test: Tests = None,
    eval_tasks: EvalTasks = "contrastive,jigsaw",
    fit_steps: FitSteps = DEFAULT_FIT_STEPS,
    fit_images: FitImages = 64,
    repeats: Repeats = 10,
    eval_protocol: EvalProtocol = "paper",
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
    """Train the neural structure extractor of SPSR-P (--task contrastive) or SPSR-J (--task
    jigsaw), or score one with --evaluate.

    Contrastive prediction: InfoNCE (τ 64) between the feature predicted from two horizontal (or
    vertical, or four cross) neighbours and ~10 000 non-overlapping negatives of 420×420 crops,
    batch 48, lr 1e-3 × 0.2 every 20 epochs. Jigsaw: the permutation (of 24) of four
    non-overlapping features on a 2×2 grid, lr 1e-4. Ctrl-C saves a resumable state.

    Examples:

      spsr pretrain-nse DIV2K/HR -o runs/nse-contrastive --task contrastive

      spsr pretrain-nse DIV2K/HR -o runs/nse-contrastive --evaluate --test Set5=Set5/HR

    Without DATA and -o it trains on the one store in data/ and writes runs/nse-<task>, where
    spsr train --variant p (contrastive) or j (jigsaw) finds it.
    """
    from spsr.workspace import Workspace, nse_run_name, training_defaults

    if task is not None and task not in NSE_TASKS:
        raise ConfigError(f"--task takes {' or '.join(NSE_TASKS)}, not {task!r}")
    name = nse_run_name(task or "contrastive")
    if evaluate:
        if output is None:
            output = Workspace.here().run_dir(name)
        _evaluate(output, data, list(test or []), eval_tasks, fit_steps, fit_images, repeats,
                  eval_protocol, device or "auto", seed or 0, quiet, as_json)
        return
    from spsr.atomic import check_writable
    from spsr.train.config import parse_set_options
    from spsr.train.engine import Trainer
    from spsr.train.log import ConsoleReporter, Reporter
    from spsr.train.monitor import make_monitors
    from spsr.train.resolve import RunLayers, resolve_run
    from spsr.train.stages.nse import EpochSchedule

    overrides: dict[str, Any] = training_overrides(locals())
    given, _ = explicit_keys(overrides, set_, config)
    found = training_defaults(
        Workspace.here(), name=name, command=f"spsr pretrain-nse --task {task or 'contrastive'}",
        output=output, resume=resume, given=given, scale=None,
    )
    output = found.output
    if found.data is not None:
        overrides["data.path"] = str(found.data.resolve())
    say_defaults(found.notes, found.warnings, quiet or as_json)
    variant = task if task is not None or resume else "contrastive"
    layers = RunLayers(variant, config, overrides=[overrides, parse_set_options(set_)])
    schedule = EpochSchedule()  # the epochs of a fresh run become iterations and milestones
    cfg = resolve_run(layers, output, resume, hook=schedule)
    if cfg.stage != "nse":
        raise ConfigError(f"{output} trains variant {cfg.variant!r}: use spsr train to resume it")
    dataset = schedule.dataset_for(cfg)
    n = cfg.section("nse")
    main = is_main_process()
    if main and dataset.skipped and not quiet and not as_json:
        err_console.print(f"[yellow]skipped {len(dataset.skipped)} image(s) smaller than "
                          f"{n.crop}×{n.crop} or unreadable[/]", highlight=False)
    reporter: Reporter = Reporter()
    if main:
        reporter = ConsoleReporter(err_console, quiet=quiet or as_json)
    monitors = make_monitors(tensorboard, wandb) if main else []
    check_writable(output)  # a read-only or full run folder fails before any model is built
    with resume_hint_on_write_error(output):
        result = Trainer(cfg, output, resume=resume, dataset=dataset, val_images=[],
                         reporter=reporter, monitors=monitors).run()
    if main:
        _report(result.run_dir, result.iteration, result.reason, as_json)
    if result.interrupted:
        raise typer.Exit(EXIT_CODES.get(result.reason, 1))

