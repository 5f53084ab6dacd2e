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
from spsr.ablation.grid import DEFAULT_SLOT, AblationGrid, load_grid, parse_slots
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
from spsr.errors import ConfigError, SpsrError
from spsr_cli._common import console, err_console, guarded, model_fetching, pick_device, progress
from spsr_cli.cmd_train import EXIT_CODES

if TYPE_CHECKING:
    from spsr.ablation.plan import AblationInputs, PlannedRun
    from spsr.ablation.runner import RowResult
    from spsr.ablation.table import AblationTable
    from spsr.train.log import Reporter

_ACTION_TEXT = {
    TRAIN: "train",
    RESUME: "resume",
    EVALUATE: "score (trained)",
    REUSE: "reuse",
    UNAVAILABLE: "unavailable",
    CONFLICT: "conflict",
}


def _absolute(path: Path | None) -> str | None:
    return str(path.expanduser().resolve()) if path is not None else None


def _print_presets() -> None:
    table = Table(title="Ablation presets")
    for column in ("Preset", "Reproduces", "Configurations"):
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


def _weights_needed(plan: list[PlannedRun]) -> dict[int, list[Any]]:
    """The ImageNet weights each row that trains will load, by row index."""
    from spsr.weights import training_needs

    return {
        i: training_needs(p.train_config)
        for i, p in enumerate(plan)
        if p.train_config is not None and p.action in (TRAIN, RESUME)
    }


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

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
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


def _check_sources(inputs: AblationInputs) -> None:
    """Every --init resolves to a weights file and every --nse exists, before anything trains."""
    from spsr.infer import resolve_weights

    for name, source in inputs.inits.items():
        try:
            resolve_weights(source)
        except (SpsrError, OSError) as exc:
            flag = "--init" if name == DEFAULT_SLOT else f"--init {name}=..."
            raise ConfigError(f"{flag}: {exc}") from None
    for name, source in inputs.nses.items():
        if not Path(source).exists():
            flag = "--nse " if name == DEFAULT_SLOT else f"--nse {name}="
            raise ConfigError(f"{flag}{source}: not found (give a run of spsr pretrain-nse)")


def _metric_columns(spec: str) -> tuple[str, ...]:
    """``--metrics`` in the order given (``all``: every metric)."""
    from spsr.metrics.registry import METRICS, parse_metrics

    parse_metrics(spec)  # validates
    names = [n.strip().lower() for n in spec.replace(" ", ",").split(",") if n.strip()]
    if "all" in names:
        return tuple(METRICS)
    return tuple(dict.fromkeys(names))


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
            "--spec", help="A TOML grid of your own (format in the README).", show_default=False
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
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            help="Columns: comma list of psnr, ssim, lpips, niqe, ma, pi, gradmap_l1, or all "
            "(default: the study's, e.g. lpips,psnr,ssim).",
            show_default=False,
        ),
    ] = None,
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
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help="Global batch size of every configuration.", show_default=False
        ),
    ] = None,
    lr_patch: Annotated[
        int | None,
        typer.Option(
            "--lr-patch",
            help="LR crop size, at a random position inside each stored patch (default: 32, "
            "or the whole stored patch when it is not larger).",
            show_default=False,
        ),
    ] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            "--checkpoint-every",
            help="Save a resumable state every N iterations.",
            show_default=False,
        ),
    ] = None,
    checkpoint_minutes: Annotated[
        float | None,
        typer.Option(
            "--checkpoint-minutes",
            help="Also save one every N minutes (default 30; 0 = off).",
            show_default=False,
        ),
    ] = None,
    vgg_weights: Annotated[
        Path | None,
        typer.Option(
            "--vgg-weights",
            help="VGG19 ImageNet weights for the perceptual loss (default: torchvision's cache).",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="auto | cpu | cuda | cuda:N, for training and scoring.",
            show_default=False,
        ),
    ] = None,
    amp: Annotated[
        str | None,
        typer.Option(
            "--amp", help="Training precision: auto | off | bf16 | fp16.", show_default=False
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Data-loader workers.", show_default=False)
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed.", show_default=False)
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Configuration key for every configuration: --set model.nf=32 (repeatable; a "
            "configuration's own changes win).",
            show_default=False,
        ),
    ] = None,
    tile: Annotated[
        int, typer.Option(min=0, help="Scoring: tile size in LR pixels (0: whole image).")
    ] = 256,
    precision: Annotated[
        str, typer.Option(help="Scoring precision: auto, fp32, bf16, fp16.")
    ] = "auto",
    protocol: Annotated[
        str,
        typer.Option(
            help="Scoring conventions, as spsr eval: spsr (the CVPR 2020 / TPAMI 2021 tables) or "
            "basicsr (SSIM at full resolution); the options below override single conventions.",
        ),
    ] = "spsr",
    crop_border: Annotated[
        int | None,
        typer.Option(
            min=0, help="Border shaved for PSNR/SSIM (protocol: the scale).", show_default=False
        ),
    ] = None,
    y_channel: Annotated[
        bool | None,
        typer.Option(
            "--y-channel/--rgb",
            help="PSNR/SSIM on the Y channel (protocol) or on RGB.",
            show_default=False,
        ),
    ] = None,
    ssim_downsample: Annotated[
        bool | None,
        typer.Option(
            "--ssim-downsample/--no-ssim-downsample",
            help="ssim.m's automatic downsampling before SSIM (protocol spsr: on, basicsr: off).",
            show_default=False,
        ),
    ] = None,
    pi_border: Annotated[
        int | None,
        typer.Option(
            min=0, help="Border shaved for NIQE, Ma and PI (protocol: 4).", show_default=False
        ),
    ] = None,
    lpips_backbone: Annotated[
        Path | None,
        typer.Option(
            help="AlexNet weights for LPIPS, the metric and the loss (default: torchvision's cache).",
            show_default=False,
        ),
    ] = None,
    ma_model: Annotated[
        Path | None, typer.Option(help="Ma et al.'s model.mat (for ma / pi).", show_default=False)
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
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
    if output is None:
        raise ConfigError("give -o OUT, the folder for the table and the run folders")
    if (preset is None) == (spec is None):
        raise ConfigError(
            "give the grid with --preset NAME or --spec FILE (one of them; see --list)"
        )
    grid = get_preset(preset) if preset is not None else load_grid(spec)  # type: ignore[arg-type]
    grid = grid.select(list(only or []))
    if not dry_run:
        if data is None:
            raise ConfigError("give DATA, the patch store every configuration trains on")
        if not data.is_file():
            raise ConfigError(f"training data not found: {data}")
        if iterations is None:
            raise ConfigError("give --iterations, the training budget every configuration shares")
        if not hr:
            raise ConfigError("give --hr DIR (one or more HR dataset folders to evaluate on)")
    from spsr.ablation.evaluate import EvalSpec, eval_datasets, eval_key
    from spsr.ablation.plan import AblationInputs, grid_scale, plan_grid
    from spsr.ablation.runner import run_plan
    from spsr.train.signals import StopSignals
    from spsr.ablation.table import AblationTable, order_metrics, write_tables
    from spsr.metrics.registry import EvalSettings, MetricSuite, parse_metrics
    from spsr.train.config import LossConfig, parse_set_options

    overrides: dict[str, Any] = {
        "data.batch_size": batch_size,
        "data.lr_patch": lr_patch,
        "run.checkpoint_every": checkpoint_every,
        "run.checkpoint_minutes": checkpoint_minutes,
        "loss.vgg_weights": _absolute(vgg_weights),
        "run.device": device,
        "run.amp": amp,
        "data.workers": workers,
        "run.seed": seed,
        **parse_set_options(set_),
    }
    if lpips_backbone is not None and "lpips_weights" in {f.name for f in fields(LossConfig)}:
        overrides.setdefault("loss.lpips_weights", _absolute(lpips_backbone))  # LPIPS loss too
    inputs = AblationInputs(
        data=_absolute(data),
        iterations=iterations,
        inits=parse_slots(init, "--init"),
        nses=parse_slots(nse, "--nse"),
        overrides={k: v for k, v in overrides.items() if v is not None},
    )
    if not dry_run:
        _check_sources(inputs)
    columns = _metric_columns(metrics or ",".join(grid.metrics))
    datasets = eval_datasets(hr or [])
    plan = plan_grid(grid, output, inputs)
    scale = grid_scale(plan)
    eval_dev = pick_device(device or "auto")
    settings = EvalSettings.for_protocol(
        parse_metrics(",".join(columns)),
        scale,
        protocol,
        crop_border=crop_border,
        y_channel=y_channel,
        pi_border=pi_border,
        ssim_downsample=ssim_downsample,
        lpips_backbone=_absolute(lpips_backbone),
        ma_model=_absolute(ma_model),
        device=eval_dev,
    )
    eval_spec = EvalSpec(datasets, settings, scale, tile, precision)
    if datasets:
        plan = plan_grid(grid, output, inputs, eval_key(eval_spec))
    from spsr.weights import ensure_files, metric_needs, missing

    row_needs = _weights_needed(plan)
    eval_needs = metric_needs(settings.metrics, settings.lpips_backbone, settings.ma_model)
    if dry_run:
        absent = {i: [f"{n.spec.filename} ({n.purpose})" for n in missing(needs)]
                  for i, needs in row_needs.items()}
        eval_absent = [f"{n.spec.filename} ({n.purpose})" for n in missing(eval_needs)]
        absent = {i: a for i, a in absent.items() if a}
        if as_json:
            typer.echo(_plan_json(plan, absent, eval_absent))
        else:
            _print_plan(grid, plan, output, absent, eval_absent)
        return
    with model_fetching(quiet, offline):
        # Every file any row or metric needs, fetched (or all missing ones listed) before training.
        ensure_files([*eval_needs, *(n for needs in row_needs.values() for n in needs)])
        suite = MetricSuite(settings)
    counts = Counter(p.action for p in plan)
    summary = ", ".join(f"{n} {_ACTION_TEXT[a]}" for a, n in counts.items())
    if not quiet:
        err_console.print(f"{grid.title}: {len(plan)} configurations ({summary})", highlight=False)

    def table_of(rows: list[RowResult]) -> AblationTable:
        return AblationTable(
            title=grid.title,
            grid=grid.name,
            source=grid.source,
            datasets=[d.name for d in datasets],
            metrics=order_metrics(columns, settings.metrics),
            rows=rows,
            describe=suite.describe(),
            info={
                "scale": scale,
                "iterations": iterations,
                "data": inputs.data,
                "init": inputs.inits.get("default"),
                "inits": dict(inputs.inits),
                "nses": dict(inputs.nses),
                "hr_dirs": [str(d.hr_dir) for d in datasets],
                "overrides": {k: v for k, v in inputs.overrides.items()},
            },
        )

    stop = StopSignals()
    rows = run_plan(
        plan,
        eval_spec,
        suite,
        eval_dev,
        _ConsoleHooks(quiet),
        on_update=lambda so_far: write_tables(output, table_of(so_far)),
        stop=stop,
    )
    table = table_of(rows)
    paths = write_tables(output, table)
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
