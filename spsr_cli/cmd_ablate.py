"""``spsr ablate DATA -o OUT --preset NAME|--spec FILE --hr DIR``: train a grid of configurations
alike, score each as ``spsr eval`` does, and write the papers' ablation table."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

# Light imports only: `spsr --help` and shell completion must not load torch.
from spsr.ablation.grid import AblationGrid, load_grid, parse_slots
from spsr.ablation.hooks import AblationHooks
from spsr.ablation.presets import get_preset, preset_names
from spsr.ablation.states import (
    CONFLICT,
    EVALUATE,
    INTERRUPTED,
    OK,
    RESUME,
    REUSE,
    TRAIN,
    UNAVAILABLE,
)
from spsr.errors import ConfigError
from spsr_cli._common import (
    console,
    err_console,
    guarded,
    model_fetching,
    progress,
)
from spsr_cli.cmd_train import EXIT_CODES
from spsr_cli.scoring_options import (
    AblateMetricsOption,
    CropBorderOption,
    LpipsBackboneOption,
    MaModelOption,
    PiBorderOption,
    ProtocolOption,
    ScoringPrecisionOption,
    ScoringTileOption,
    SsimDownsampleOption,
    YChannelOption,
)
from spsr_cli.training_options import (
    AblateAmp,
    AblateBatchSize,
    AblateCheckpointEvery,
    AblateCheckpointMinutes,
    AblateDevice,
    AblateSet,
    AblateVggWeights,
    AblateWorkers,
    LrPatch,
    Quiet,
    Seed,
    TensorBoard,
    Wandb,
    absolute_path,
    training_overrides,
)

if TYPE_CHECKING:
    from spsr.ablation.plan import AblationInputs, PlannedRun
    from spsr.ablation.runner import RowResult
    from spsr.ablation.study import StudyPlan
    from spsr.ablation.table import AblationTable
    from spsr.train.log import Reporter
    from spsr.train.monitor import Monitor
    from spsr.train.signals import StopSignals

_ACTION_TEXT = {
    TRAIN: "train",
    RESUME: "resume",
    EVALUATE: "score (trained)",
    REUSE: "reuse",
    UNAVAILABLE: "unavailable",
    CONFLICT: "conflict",
}


def _print_presets() -> None:
    table = Table(title="Ablation presets")
    for column in ("Preset", "Rows of", "Configurations"):
        table.add_column(column)
    for name in preset_names():
        grid = get_preset(name)
        table.add_row(name, grid.source, ", ".join(c.name for c in grid.configs))
    console.print(table)


def _print_plan(
    grid: AblationGrid, plan: list[PlannedRun], out: Path, absent: dict[int, list[str]] | None = None,
    eval_absent: list[str] | None = None,
) -> None:
    absent = absent or {}
    table = Table(title=f"{grid.title} ({grid.source or grid.name}): plan for {out}")
    for column in ("#", "Configuration", "Variant", "Changes", "Iterations", "Action"):
        table.add_column(column, overflow="fold")
    for i, p in enumerate(plan, 1):
        action = _ACTION_TEXT[p.action]
        if p.action == RESUME:
            action += f" from {p.done_iterations}"
        if p.problem:
            action = f"[yellow]{action}[/]: {p.problem}"
        if absent.get(i - 1):
            action += f"; [yellow]weights missing[/]: {', '.join(absent[i - 1])}"
        iterations = str(p.iterations) if p.train_config is not None else "–"
        table.add_row(
            str(i), p.config.name, p.config.variant, p.overrides_text(), iterations, action
        )
    console.print(table)
    if eval_absent:
        console.print(
            f"[yellow]weights missing for the metrics[/]: {', '.join(eval_absent)}", highlight=False,
            soft_wrap=True,
        )
    if absent or eval_absent:
        console.print(
            "missing files are fetched when the study starts (spsr fetch warms the cache ahead; "
            "with --offline the study stops and lists them)", highlight=False, soft_wrap=True,
        )


def _plan_json(plan: list[PlannedRun], absent: dict[int, list[str]], eval_absent: list[str]) -> str:
    """The dry-run plan as JSON: one record per row, and the metrics' missing files."""
    import json

    rows = [
        {"name": p.config.name, "variant": p.config.variant, "changes": p.overrides_text(),
         "action": p.action, "problem": p.problem or None,
         "iterations": p.iterations if p.train_config is not None else None,
         "weights_missing": absent.get(i, [])}
        for i, p in enumerate(plan)
    ]
    return json.dumps({"rows": rows, "metrics_weights_missing": eval_absent}, indent=2)


def _render(table: AblationTable) -> None:
    from spsr.ablation.table import best_marks, metric_cells, row_means
    from spsr.metrics.registry import METRICS

    best, second = best_marks(table)
    out = Table(
        title=table.title,
        caption="↑ higher / ↓ lower is better; best in bold, second in italics",
    )
    out.add_column("Method")
    for d in table.datasets:
        for m in table.metrics:
            arrow = "↑" if METRICS[m].higher_is_better else "↓"
            out.add_column(f"{d}\n{METRICS[m].label} {arrow}", justify="right")
    for row in table.rows:
        means = row_means(row)
        cells = metric_cells(table, row.name, means, best, second, ("[bold]", "[/]"), ("[italic]", "[/]"))
        label = row.name if row.status == OK else f"{row.name} [red]({row.status})[/]"
        out.add_row(label, *cells)
    console.print(out)
    for row in table.rows:
        if row.status != OK:
            err_console.print(
                f"[red]{row.status}[/] {row.name}: {row.reason}", highlight=False, soft_wrap=True
            )


class _ConsoleHooks(AblationHooks):
    """Status lines, the engine's training progress, and an evaluation progress bar."""

    def __init__(self, quiet: bool, tensorboard: bool | None = None, wandb: str | None = None) -> None:
        self.quiet = quiet
        self.tensorboard = tensorboard
        self.wandb = wandb
        self._bar: Any = None
        self._task: Any = None

    def _say(self, text: str) -> None:
        if not self.quiet:
            err_console.print(text, highlight=False, soft_wrap=True)

    def row_started(self, index: int, total: int, planned: PlannedRun) -> None:
        what = {
            TRAIN: f"training {planned.iterations} iterations",
            RESUME: f"resuming at {planned.done_iterations} of {planned.iterations}",
            EVALUATE: "scoring",
            REUSE: "reusing scores",
        }.get(planned.action, planned.action)
        self._say(f"[bold][{index}/{total}] {planned.config.name}[/]: {what} ({planned.run_dir})")

    def reporter(self, planned: PlannedRun) -> Reporter:
        from spsr.train.log import ConsoleReporter

        return ConsoleReporter(err_console, quiet=self.quiet)

    def monitors(self, planned: PlannedRun) -> list[Monitor]:
        from spsr.train.monitor import make_monitors

        return make_monitors(self.tensorboard, self.wandb)

    def evaluation_started(self, planned: PlannedRun, images: int) -> None:
        self._close_bar()
        self._bar = progress(self.quiet)
        self._bar.start()
        self._task = self._bar.add_task(f"scoring {planned.config.name}", total=images)

    def image_scored(self, planned: PlannedRun, name: str) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def row_finished(self, row: RowResult) -> None:
        self._close_bar()
        if row.status == OK:
            reused = " (scores reused)" if row.scored == 0 else ""
            self._say(f"  done{reused}")
        elif row.status not in ("not run",):
            err_console.print(
                f"  [red]{row.status}[/]: {row.reason}", highlight=False, soft_wrap=True
            )

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@guarded
def ablate(
    data: Annotated[
        Path | None,
        typer.Argument(
            help="HDF5 patch store from `spsr prepare-data` (every configuration trains on it).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Ablation folder: the table files and runs/<configuration>/.",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            "-p",
            help="A built-in study: " + ", ".join(preset_names()) + " (see --list).",
            show_default=False,
        ),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec", help="A TOML grid of your own (format: docs/guide/ablation.md).", show_default=False
        ),
    ] = None,
    hr: Annotated[
        list[Path] | None,
        typer.Option(
            "--hr",
            help="HR dataset folder to evaluate on (repeatable; LR made by MATLAB bicubic).",
            show_default=False,
        ),
    ] = None,
    init: Annotated[
        list[str] | None,
        typer.Option(
            "--init",
            help="Common init weights (run folder or checkpoint); NAME=PATH for the rows that "
            "ask for another (e.g. edsr=runs/edsr_psnr). Repeatable.",
            show_default=False,
        ),
    ] = None,
    nse: Annotated[
        list[str] | None,
        typer.Option(
            "--nse",
            help="spsr pretrain-nse run for SPSR-P rows; NAME=RUN for others (vertical, cross, "
            "jigsaw). Repeatable.",
            show_default=False,
        ),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            "--iterations",
            min=1,
            help="Training budget of every configuration.",
            show_default=False,
        ),
    ] = None,
    metrics: AblateMetricsOption = None,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only this configuration (name or folder; repeatable).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the plan (configurations, changes, what will run) and stop."
        ),
    ] = False,
    list_presets: Annotated[
        bool, typer.Option("--list", help="List the built-in studies and stop.")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="No network access (as SPSR_OFFLINE=1): weights must already be cached or given "
            "by path; every missing one is listed before anything trains.",
        ),
    ] = False,
    batch_size: AblateBatchSize = None,
    lr_patch: LrPatch = None,
    checkpoint_every: AblateCheckpointEvery = None,
    checkpoint_minutes: AblateCheckpointMinutes = None,
    vgg_weights: AblateVggWeights = None,
    device: AblateDevice = None,
    amp: AblateAmp = None,
    workers: AblateWorkers = None,
    seed: Seed = None,
    set_: AblateSet = None,
    tile: ScoringTileOption = 256,
    precision: ScoringPrecisionOption = "auto",
    protocol: ProtocolOption = "spsr",
    crop_border: CropBorderOption = None,
    y_channel: YChannelOption = None,
    ssim_downsample: SsimDownsampleOption = None,
    pi_border: PiBorderOption = None,
    lpips_backbone: LpipsBackboneOption = None,
    ma_model: MaModelOption = None,
    tensorboard: TensorBoard = None,
    wandb: Wandb = None,
    quiet: Quiet = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the table (with --dry-run: the plan) as JSON on stdout.")
    ] = False,
) -> None:
    """Ablation study: train each configuration of a grid from the same init, on the same data and
    budget, score them as `spsr eval` does, and write the table (Markdown, CSV, JSON).

    Finished runs and their scores are reused, half-finished ones resume, a failing configuration
    is reported in the table and the others still run (exit code 1 when any did not complete).

    Example: spsr ablate data/div2k_x4.h5 --preset g-components --init runs/psnr --iterations 50000
    --hr Set14/HR --hr BSD100/HR -o ablations/g
    """
    if list_presets:
        _print_presets()
        return
    grid = _grid(output, preset, spec, only)
    if not dry_run:
        _require_run_inputs(data, iterations, hr)
        from spsr.train.monitor import make_monitors

        make_monitors(tensorboard, wandb)  # a missing package: one line before any work
    from spsr.ablation.study import check_sources, plan_study

    inputs = _inputs(
        data, iterations, init, nse, set_, lpips_backbone,
        training_overrides({
            "batch_size": batch_size, "lr_patch": lr_patch, "checkpoint_every": checkpoint_every,
            "checkpoint_minutes": checkpoint_minutes, "vgg_weights": vgg_weights,
            "device": device, "amp": amp, "workers": workers, "seed": seed,
        }),
    )
    if not dry_run:
        check_sources(inputs)
        from spsr.atomic import check_writable

        assert output is not None  # _grid checked it
        check_writable(output)  # a read-only or full folder fails before the first run
    conventions = {
        "crop_border": crop_border, "y_channel": y_channel, "pi_border": pi_border,
        "ssim_downsample": ssim_downsample, "lpips_backbone": absolute_path(lpips_backbone),
        "ma_model": absolute_path(ma_model),
    }
    assert output is not None  # _grid checked it
    study = plan_study(
        grid, output, inputs, metrics=metrics, hr_dirs=hr or [], protocol=protocol,
        conventions=conventions, device=device or "auto", tile=tile, precision=precision,
    )
    if dry_run:
        _print_dry_run(study, as_json)
        return
    rows, stop, describe = _run(study, quiet, offline, _ConsoleHooks(quiet, tensorboard, wandb))
    _finish(study, rows, describe, stop, quiet, as_json)


def _grid(output: Path | None, preset: str | None, spec: Path | None, only: list[str] | None) -> AblationGrid:
    """The grid the options name (``--preset`` or ``--spec``, narrowed by ``--only``)."""
    if output is None:
        raise ConfigError("give -o OUT, the folder for the table and the run folders")
    if (preset is None) == (spec is None):
        raise ConfigError(
            "give the grid with --preset NAME or --spec FILE (one of them; see --list)"
        )
    if preset is not None:
        grid = get_preset(preset)
    else:
        assert spec is not None  # exactly one of the two, checked above
        grid = load_grid(spec)
    return grid.select(list(only or []))


def _require_run_inputs(data: Path | None, iterations: int | None, hr: list[Path] | None) -> None:
    """What a real run needs beyond a dry run's."""
    if data is None:
        raise ConfigError("give DATA, the patch store every configuration trains on")
    if not data.is_file():
        raise ConfigError(f"training data not found: {data}")
    if iterations is None:
        raise ConfigError("give --iterations, the training budget every configuration shares")
    if not hr:
        raise ConfigError("give --hr DIR (one or more HR dataset folders to evaluate on)")


def _inputs(
    data: Path | None, iterations: int | None, init: list[str] | None, nse: list[str] | None,
    set_: list[str] | None, lpips_backbone: Path | None, options: dict[str, Any],
) -> AblationInputs:
    from spsr.ablation.plan import AblationInputs
    from spsr.train.config import LossConfig, parse_set_options

    overrides: dict[str, Any] = {**options, **parse_set_options(set_)}
    if lpips_backbone is not None and "lpips_weights" in {f.name for f in fields(LossConfig)}:
        overrides.setdefault("loss.lpips_weights", absolute_path(lpips_backbone))  # LPIPS loss too
    return AblationInputs(
        data=absolute_path(data),
        iterations=iterations,
        inits=parse_slots(init, "--init"),
        nses=parse_slots(nse, "--nse"),
        overrides={k: v for k, v in overrides.items() if v is not None},
    )


def _print_dry_run(study: StudyPlan, as_json: bool) -> None:
    from spsr.ablation.study import missing_weights

    absent, eval_absent = missing_weights(study)
    if as_json:
        typer.echo(_plan_json(study.plan, absent, eval_absent))
    else:
        _print_plan(study.grid, study.plan, study.out, absent, eval_absent)


def _run(
    study: StudyPlan, quiet: bool, offline: bool, hooks: AblationHooks
) -> tuple[list[RowResult], StopSignals, dict[str, Any]]:
    """Fetch every weights file, then train and score the rows (the table rewritten after each)."""
    from spsr.ablation.runner import run_plan
    from spsr.ablation.study import metric_weights, study_table, training_weights
    from spsr.ablation.table import write_tables
    from spsr.metrics.registry import MetricSuite
    from spsr.train.signals import StopSignals
    from spsr.weights import ensure_files

    with model_fetching(quiet, offline):
        # Every file any row or metric needs, fetched (or all missing ones listed) before training.
        row_needs = training_weights(study.plan)
        ensure_files([*metric_weights(study), *(n for needs in row_needs.values() for n in needs)])
        suite = MetricSuite(study.settings)
    counts = Counter(p.action for p in study.plan)
    summary = ", ".join(f"{n} {_ACTION_TEXT[a]}" for a, n in counts.items())
    if not quiet:
        err_console.print(
            f"{study.grid.title}: {len(study.plan)} configurations ({summary})", highlight=False
        )
    describe = suite.describe()
    stop = StopSignals()
    rows = run_plan(
        study.plan,
        study.eval_spec,
        suite,
        study.device,
        hooks,
        on_update=lambda so_far: write_tables(study.out, study_table(study, so_far, describe)),
        stop=stop,
    )
    return rows, stop, describe


def _write_curves(study: StudyPlan, rows: list[RowResult], markdown: Path) -> Path | None:
    """The training curves of the rows (as spsr plot draws them) into OUT/curves.png, embedded at
    the end of ablation.md; None when no row has a training log."""
    from spsr.atomic import write_text_atomic
    from spsr.run_folder import LOG_FILE
    from spsr.train.curves import save_curves

    trained = [r.planned for r in rows if (r.planned.run_dir / LOG_FILE).is_file()]
    if not trained:
        return None
    try:
        path = save_curves([p.run_dir for p in trained], Path(study.out) / "curves.png",
                           title=study.grid.title, labels=[p.config.name for p in trained])
    except ConfigError:  # logs without a training record yet: nothing to draw
        return None
    text = markdown.read_text(encoding="utf-8").rstrip("\n")
    write_text_atomic(markdown, f"{text}\n\n![training curves]({path.name})\n")
    return path


def _finish(
    study: StudyPlan, rows: list[RowResult], describe: dict[str, Any], stop: StopSignals,
    quiet: bool, as_json: bool,
) -> None:
    """Write and show the table; exit 130/143 when stopped by a signal, 1 when a row failed."""
    from spsr.ablation.study import study_table
    from spsr.ablation.table import write_tables

    table = study_table(study, rows, describe)
    paths = write_tables(study.out, table)
    curves = _write_curves(study, rows, paths["md"])
    if curves is not None:
        paths["curves"] = curves
    if as_json:
        typer.echo(paths["json"].read_text(encoding="utf-8"), nl=False)
    else:
        _render(table)
        if not quiet:
            err_console.print(
                "table: " + ", ".join(str(p) for p in paths.values()),
                highlight=False,
                soft_wrap=True,
            )
    statuses = Counter(r.status for r in rows)
    if stop.reason is not None or statuses.get(INTERRUPTED):
        if not quiet:
            err_console.print(
                f"[yellow]stopped by {stop.reason or 'SIGINT'}[/]; the same command carries on: "
                f"spsr {shlex.join(sys.argv[1:])}",
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(EXIT_CODES.get(stop.reason or "SIGINT", 130))
    if any(r.status != OK for r in rows):
        raise typer.Exit(1)
