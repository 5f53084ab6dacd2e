"""``spsr eval``: PSNR, SSIM, LPIPS, NIQE, Ma and PI in the papers' conventions.

Two modes:

* ``spsr eval SR_DIR --hr HR_DIR`` scores existing results, paired with HR images by name;
* ``spsr eval --weights W [--weights W2 ...] [--model bicubic] HR_DIR [HR_DIR2 ...]`` degrades each
  HR image with the MATLAB bicubic, upscales it with each model (tiled) and scores it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from spsr.errors import ConfigError, WriteError

if TYPE_CHECKING:
    from spsr.metrics.registry import MetricSuite
    from spsr.metrics.score_folders import (
        DatasetResult,
        Upscaler,
    )
from spsr_cli._common import (
    MODEL_SCALE_HELP,
    DeviceOption,
    EngineOption,
    EngineRetuneOption,
    ShardOption,
    TileProgress,
    check_engine,
    console,
    err_console,
    guarded,
    model_fetching,
    pick_device,
    progress,
    warn,
)
from spsr_cli.scoring_options import (
    CropBorderOption,
    LpipsBackboneOption,
    MaModelOption,
    MetricsOption,
    PiBorderOption,
    ProtocolOption,
    ScoringPrecisionOption,
    ScoringTileOption,
    SsimDownsampleOption,
    YChannelOption,
)

BASELINES = ("bicubic",)


def _model_upscaler(source: str, scale: int, tile: int, device: str, precision: str,
                    tiles: TileProgress, engine: str, engine_retune: bool = False) -> Upscaler:
    from spsr.infer.session import load_eval_upscaler

    upscaler, warnings = load_eval_upscaler(source, scale, tile, device, precision, engine,
                                            on_note=warn, on_tiles=tiles.update, engine_retune=engine_retune)
    for line in warnings:
        warn(line)
    return upscaler


def _available_metrics(
    names: tuple[str, ...], lpips_backbone: Path | None, ma_model: Path | None
) -> tuple[tuple[str, ...], dict[str, str]]:
    """``--skip-unavailable``: the metrics whose model files can be had (fetched now if need be),
    and for each other one why not and the ``spsr fetch`` line that fixes it."""
    from spsr.errors import MissingWeightsError
    from spsr.metrics.registry import metric_needs
    from spsr.weights import ensure_files

    kept: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            ensure_files(metric_needs([name], None if lpips_backbone is None else str(lpips_backbone),
                                      None if ma_model is None else str(ma_model)))
        except MissingWeightsError as exc:
            why = " ".join(str(exc).split())
            skipped[name] = f"{why}; fix: spsr fetch {name}"
            continue
        kept.append(name)
    return tuple(kept), skipped


class _ImageProgress:
    """One bar per (model, dataset) counting its images on a terminal; a plain line per image
    otherwise (as ``spsr upscale`` prints them); tile progress within each image."""

    def __init__(self, bar: Any, tiles: TileProgress, plain: bool) -> None:
        self.bar, self.tiles, self.plain = bar, tiles, plain

    def images(self, label: str, dataset: str, paths: list[Path]) -> tuple[Any, Any]:
        """(``on_image`` callback, wrapper of an upscaler that shows its tiles) for one row."""
        what = f"{label} on {dataset}"
        task = self.bar.add_task(what, total=len(paths))
        state = {"done": 0, "since": time.perf_counter()}
        pending = iter(paths)

        def on_image(image: str) -> None:
            self.bar.advance(task)
            state["done"] += 1
            now = time.perf_counter()
            if self.plain:
                err_console.print(f"[{state['done']}/{len(paths)}] {what}: {image} "
                                  f"({now - state['since']:.1f} s)", highlight=False)
            state["since"] = now

        def wrap(upscale: Upscaler) -> Upscaler:
            def run(lr: Any) -> Any:
                self.tiles.begin(next(pending, Path("image")).name)
                try:
                    return upscale(lr)
                finally:
                    self.tiles.end()
            return run

        return on_image, wrap


def _unique_label(label: str, taken: set[str]) -> str:
    candidate, n = label, 2
    while candidate in taken:
        candidate, n = f"{label} ({n})", n + 1
    taken.add(candidate)
    return candidate


def _weights_label(source: str) -> str:
    path = Path(source)
    if path.is_dir():
        return path.resolve().name
    return path.stem if path.suffix else source


def _render(results: list[DatasetResult], suite: MetricSuite, scale: int) -> None:
    from spsr.metrics.registry import METRICS, conventions_note
    from spsr.metrics.score_folders import best_models
    notes = ["↑ higher / ↓ lower is better, best in bold; ",
             conventions_note(suite.settings.scoring, suite.metrics)]
    for dataset in dict.fromkeys(r.dataset for r in results):
        rows = [r for r in results if r.dataset == dataset]
        best = best_models(rows)
        n_images = len(rows[0].images)
        table = Table(
            title=f"{dataset} (x{scale}, {n_images} image{'s' if n_images != 1 else ''})",
        )
        table.add_column("Model")
        for m in suite.metrics:
            info = METRICS[m]
            table.add_column(f"{info.label} {'↑' if info.higher_is_better else '↓'}", justify="right")
        for r in rows:
            means = r.means()
            cells = []
            for m in suite.metrics:
                text = f"{means[m]:.{METRICS[m].decimals}f}"
                cells.append(f"[bold]{text}[/]" if r.model in best.get(m, set()) else text)
            table.add_row(r.model, *cells)
        console.print(table)
    console.print("".join(notes), style="dim", highlight=False)


def _render_grouped(results: list[DatasetResult], suite: MetricSuite, scale: int) -> None:
    """One table, one column group per dataset (its metrics side by side), one row per model:
    the layout of the papers' tables (CVPR 2020 Table 1, TPAMI 2021 Table 2)."""
    from spsr.metrics.registry import METRICS, conventions_note
    from spsr.metrics.score_folders import best_models

    datasets = list(dict.fromkeys(r.dataset for r in results))
    models = list(dict.fromkeys(r.model for r in results))
    by_key = {(r.dataset, r.model): r for r in results}
    sizes = ", ".join(f"{d} {len(by_key[d, models[0]].images)}" for d in datasets)
    table = Table(title=f"x{scale} benchmarks (images: {sizes})")
    table.add_column("Model")
    for dataset in datasets:
        for i, m in enumerate(suite.metrics):  # the dataset's name heads its group's first column
            info = METRICS[m]
            arrow = "↑" if info.higher_is_better else "↓"
            table.add_column(f"{dataset if i == 0 else ''}\n{info.label} {arrow}", justify="right")
    best = {d: best_models([by_key[d, model] for model in models]) for d in datasets}
    for model in models:
        cells = []
        for dataset in datasets:
            means = by_key[dataset, model].means()
            for m in suite.metrics:
                text = f"{means[m]:.{METRICS[m].decimals}f}"
                cells.append(f"[bold]{text}[/]" if model in best[dataset].get(m, set()) else text)
        table.add_row(model, *cells)
    console.print(table)
    console.print("↑ higher / ↓ lower is better, best in bold; "
                  + conventions_note(suite.settings.scoring, suite.metrics), style="dim", highlight=False)


@guarded
def evaluate(
    folders: Annotated[list[Path] | None, typer.Argument(
        help="SR_DIR with --hr; otherwise one or more HR_DIR datasets to degrade and upscale. "
        "\\[default: the benchmarks found in datasets/]", show_default=False, metavar="DIR")] = None,
    hr: Annotated[Path | None, typer.Option(
        "--hr", help="HR images to score SR_DIR against (paired by file name).")] = None,
    weights: Annotated[list[str] | None, typer.Option(
        "--weights", "-w", help="Model weights (.safetensors/.pth), run folder (g: runs/g) or "
        "built-in name; repeat for one row per model. Without DIR the default is the built-in "
        "model.")] = None,
    datasets_dir: Annotated[Path | None, typer.Option(
        "--datasets", help="Without DIR: the folder holding Set5, Set14, BSD100, Urban100, "
        "Manga109 (as <name>/HR or <name>). \\[default: $SPSR_DATASETS, else datasets/]",
        show_default=False)] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Baseline row: bicubic (MATLAB bicubic upscaling of the LR image).")] = None,
    metrics: MetricsOption = "psnr,ssim",
    scale: Annotated[int, typer.Option("--scale", "-s", min=1, help="Scale factor.")] = 4,
    model_scale: Annotated[int | None, typer.Option(
        "--model-scale", min=1, help=MODEL_SCALE_HELP + " In eval it must be --scale (the default).",
        show_default=False)] = None,
    protocol: ProtocolOption = "spsr",
    crop_border: CropBorderOption = None,
    y_channel: YChannelOption = None,
    ssim_downsample: SsimDownsampleOption = None,
    pi_border: PiBorderOption = None,
    lpips_backbone: LpipsBackboneOption = None,
    ma_model: MaModelOption = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="No network access (as SPSR_OFFLINE=1): model files must already be "
        "cached or given by path; every missing one is listed.")] = False,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Write per-image scores as CSV.")] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Write everything (means, per-image scores, conventions) as JSON; "
        "'-' prints it instead of the tables.")] = None,
    save_sr: Annotated[Path | None, typer.Option(
        help="Keep the upscaled images under DIR/<model>/<dataset>/.")] = None,
    tile: ScoringTileOption = 256,
    device: DeviceOption = "auto",
    precision: ScoringPrecisionOption = "auto",
    engine: EngineOption = "auto",
    engine_retune: EngineRetuneOption = False,
    shard: ShardOption = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Combine the --json results of shards (spsr eval --shard K/N ...) given as "
        "DIR arguments into the table, --json and --csv of one process.")] = False,
    skip_unavailable: Annotated[bool, typer.Option(
        "--skip-unavailable", help="Score every metric that can be computed and list the others "
        "(model file missing, e.g. offline) with the spsr fetch line that fixes them, instead of "
        "stopping before any work.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Score super-resolved images like the papers' tables: one row per model, one table per dataset.

    --protocol spsr (default) follows the CVPR 2020 / TPAMI 2021 tables (their bicubic x4 row:
    Set5 28.42 / 0.8245); --protocol basicsr BasicSR and most SR papers (Set5 28.42 / 0.8104).

    Examples:

      spsr eval results/Set5 --hr datasets/Set5/HR --metrics all

      spsr eval --weights runs/spsr_g --model bicubic datasets/Set5/HR datasets/Set14/HR

      spsr eval --weights g --metrics psnr,ssim,lpips,pi   (runs/g on the benchmarks in datasets/)

    LPIPS's AlexNet and Ma's model.mat are downloaded into the cache on first use (spsr fetch
    warms it ahead, for machines without network access).
    """
    from spsr.atomic import check_writable, write_text_atomic
    from spsr.metrics.registry import EvalSettings, MetricSuite, parse_metrics
    from spsr.metrics.score_folders import (
        bicubic_upscaler,
        dataset_name,
        list_images,
        pair_images,
        results_csv,
        results_json,
        score_pairs,
        score_upscaler,
    )
    check_engine(engine)
    if merge:
        if hr is not None or weights or model:
            raise ConfigError("--merge combines results files; it takes no --hr, --weights or --model")
        from spsr.metrics.merge import merge_results

        if not folders:
            raise ConfigError("--merge takes the shards' --json files as DIR arguments")
        merged, merged_suite, merged_extra = merge_results(list(folders))
        if csv_path is not None:
            write_text_atomic(csv_path, results_csv(merged, merged_suite.settings.scoring.label))
        if json_path is not None:
            text = results_json(merged, merged_suite, merged_extra)  # type: ignore[arg-type]
            if json_path == Path("-"):
                typer.echo(text, nl=False)
                return
            write_text_atomic(json_path, text)
        _render(merged, merged_suite, int(str(merged_extra.get("scale", scale))))  # type: ignore[arg-type]
        return
    from spsr.infer.shards import resolve_shard

    this_shard = resolve_shard(shard) if hr is None else None
    if shard is not None and hr is not None:
        raise ConfigError("--shard splits the images to upscale (--weights/--model); with --hr nothing is upscaled")
    if this_shard is not None and json_path is None:
        raise ConfigError(f"running as shard {this_shard} ({this_shard.source}): give --json PART.json to keep "
                          "this shard's scores for spsr eval --merge")
    device = pick_device(device)
    weights, baselines = list(weights or []), [m.lower() for m in (model or [])]
    folders, grouped = list(folders or []), False
    names: dict[Path, str] = {}
    if datasets_dir is not None and (folders or hr is not None):
        raise ConfigError("--datasets chooses the benchmarks when no DIR is given; give one or the other")
    if not folders and hr is None:
        from spsr.workspace import Workspace

        found = Workspace.here().default_benchmarks(datasets_dir)
        folders, grouped = [b.hr_dir for b in found], True
        names = {b.hr_dir: b.name for b in found}
        weights = weights or ([] if baselines else ["default"])
        if not quiet and json_path != Path("-"):
            listed = ", ".join(f"{b.name} ({b.hr_dir})" for b in found)
            err_console.print(f"benchmarks: {listed}", highlight=False, soft_wrap=True)
    unknown = [m for m in baselines if m not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown --model {unknown[0]}; the baseline is 'bicubic' "
                          "(use --weights for trained models)")
    if model_scale is not None and model_scale != scale:
        raise ConfigError(f"--model-scale {model_scale} differs from --scale {scale}: eval scores a model "
                          "at its own scale (give --scale for both)")
    if hr is not None and (weights or baselines):
        raise ConfigError("--hr scores existing SR images; it cannot be combined with --weights/--model")
    if hr is None and not (weights or baselines):
        raise ConfigError("give --hr HR_DIR to score SR_DIR, or --weights W / --model bicubic to "
                          "upscale the HR_DIR datasets")
    if not folders:
        raise ConfigError("give the folder(s) to score: SR_DIR with --hr, or HR_DIR datasets")
    if hr is not None and len(folders) != 1:
        raise ConfigError("with --hr give exactly one SR_DIR")
    if save_sr is not None and hr is not None:
        raise ConfigError("--save-sr keeps upscaled images; with --hr nothing is upscaled")

    quiet = quiet or json_path == Path("-")
    metric_names = parse_metrics(metrics)
    skipped: dict[str, str] = {}
    if skip_unavailable:
        with model_fetching(quiet, offline):
            metric_names, skipped = _available_metrics(metric_names, lpips_backbone, ma_model)
        for name, why in skipped.items():
            warn(f"skipped {name}: {why}")
        if not metric_names:
            raise ConfigError("none of the metrics asked for can be computed (see above)")
    settings = EvalSettings.for_protocol(
        metric_names,
        scale,
        protocol,
        crop_border=crop_border,
        y_channel=y_channel,
        pi_border=pi_border,
        ssim_downsample=ssim_downsample,
        lpips_backbone=None if lpips_backbone is None else str(lpips_backbone),
        ma_model=None if ma_model is None else str(ma_model),
        device=device,
    )
    # a read-only or full output location fails now, not after every image was scored
    for out in (csv_path, None if json_path == Path("-") else json_path):
        if out is not None:
            check_writable(out.parent)
    if save_sr is not None:
        check_writable(save_sr)
    with model_fetching(quiet, offline):
        suite = MetricSuite(settings)  # fetches / loads LPIPS and Ma weights now, before any work
    extra: dict[str, object] = {"scale": scale}

    def show(done: list[DatasetResult]) -> None:
        """The table of the scores so far: one column group per benchmark when none was named."""
        if grouped:
            _render_grouped(done, suite, scale)
        else:
            _render(done, suite, scale)
    if skipped:
        extra["skipped_metrics"] = skipped
    bar = progress(quiet, unit="img")
    tiles = TileProgress(bar, plain=not quiet and not err_console.is_terminal)
    shown = _ImageProgress(bar, tiles, plain=not quiet and not err_console.is_terminal)
    results: list[DatasetResult] = []

    if hr is not None:
        pairing = pair_images(folders[0], hr)
        for path in pairing.unmatched_sr:
            err_console.print(f"[yellow]unmatched SR:[/] {path}", highlight=False, soft_wrap=True)
        for path in pairing.unmatched_hr:
            err_console.print(f"[yellow]unmatched HR:[/] {path}", highlight=False, soft_wrap=True)
        label = Path(folders[0]).resolve().name
        with bar:
            on_image, _ = shown.images(label, dataset_name(hr), [p for _, p, _ in pairing.pairs])
            results.append(score_pairs(pairing, suite, scale, dataset_name(hr), label,
                                       on_image=on_image))
        extra.update(mode="sr-folder", sr_dir=str(folders[0]), hr_dir=str(hr),
                     unmatched_sr=[str(p) for p in pairing.unmatched_sr],
                     unmatched_hr=[str(p) for p in pairing.unmatched_hr])
    else:
        datasets = [(names.get(d) or dataset_name(d), list_images(d)) for d in folders]
        if this_shard is not None:
            datasets = [(name, this_shard.take(paths, key=str)) for name, paths in datasets]
            extra["shard"] = str(this_shard)
        taken: set[str] = set()
        rows: list[tuple[str, Upscaler, str]] = [
            (_unique_label("Bicubic", taken), bicubic_upscaler(scale), "bicubic") for _ in baselines[:1]
        ]
        for source in weights:
            rows.append((_unique_label(_weights_label(source), taken),
                         _model_upscaler(source, scale, tile, device, precision, tiles, engine,
                                         engine_retune), source))
        with bar:
            for name, paths in datasets:
                for label, upscale, _ in rows:
                    on_image, with_tiles = shown.images(label, name, list(paths))
                    save_dir = None if save_sr is None else save_sr / label / name
                    try:
                        results.append(score_upscaler(paths, with_tiles(upscale), suite, scale, name,
                                                      label, save_dir, on_image=on_image))
                    except WriteError as exc:  # --save-sr on a full disk: keep what was scored
                        bar.stop()
                        if results:
                            show(results)
                        raise exc.with_note(f"the scores of {len(results)} finished model/dataset "
                                            "pair(s) are printed above") from None
        extra.update(mode="models", hr_dirs=[str(d) for d in folders],
                     models={label: source for label, _, source in rows})

    try:
        if csv_path is not None:
            write_text_atomic(csv_path, results_csv(results, settings.scoring.label))
        if json_path is not None and json_path != Path("-"):
            write_text_atomic(json_path, results_json(results, suite, extra))
    except WriteError:
        # the scores took the work; print them before saying they could not be saved
        if json_path == Path("-"):
            typer.echo(results_json(results, suite, extra), nl=False)
        else:
            show(results)
        raise
    if json_path == Path("-"):
        typer.echo(results_json(results, suite, extra), nl=False)
        return
    show(results)
