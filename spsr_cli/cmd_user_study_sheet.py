"""``spsr user-study-sheet``: a blind ranking study as a static web page, and its votes' tally."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from spsr.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import JustifyMethod

    from spsr.user_study.crops import CropBox
    from spsr.user_study.tally import StudyTally
from spsr.user_study.sheet import DEFAULT_INSTRUCTIONS, DEFAULT_TITLE
from spsr_cli._common import (
    SpsrCommand,
    SpsrGroup,
    console,
    err_console,
    fail,
    guarded,
    progress,
    warn,
)

app = typer.Typer(
    cls=SpsrGroup,
    name="user-study-sheet",
    help="Blind ranking user study: [bold]build[/] a static HTML sheet, [bold]tally[/] its votes.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _parse_method(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder:
        raise ConfigError(f"--method {text!r}: expected NAME=DIR")
    return name.strip(), Path(folder)


def _same_folders(hr: Path, methods: list[tuple[str, Path]]) -> list[str]:
    """Warnings for methods that read the same folder (or the HR folder): raters would rank
    identical images, which is almost always a typo on the command line."""
    seen: dict[Path, str] = {hr.expanduser().resolve(): "--hr"}
    lines = []
    for name, folder in methods:
        where = folder.expanduser().resolve()
        if where in seen:
            other = "the HR references (--hr)" if seen[where] == "--hr" else f"method {seen[where]}"
            lines.append(f"method {name} reads the same folder as {other} ({folder}): "
                         "raters will see identical images")
        else:
            seen[where] = name
    return lines


@app.command("build", cls=SpsrCommand)
@guarded
def build(
    hr: Annotated[
        Path, typer.Option("--hr", help="Folder of HR reference images.", show_default=False)
    ],
    method: Annotated[
        list[str],
        typer.Option(
            "--method",
            "-m",
            help="NAME=DIR of one method's outputs (repeat, 2 or more); paired with HR by stem.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Study folder to create (serve it or open its index.html).",
            show_default=False,
        ),
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="Answer key file, outside the folder. \\[default: OUTPUT-key.json next to it]",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed of the per-rater orders. \\[default: random]", show_default=False
        ),
    ] = None,
    crop: Annotated[
        str | None,
        typer.Option(
            "--crop",
            help="Zoomed crop under each image: x,y,w,h in HR pixels, or 'auto' "
            "(the most structured window of each HR image).",
            show_default=False,
        ),
    ] = None,
    crop_size: Annotated[
        int | None,
        typer.Option(
            "--crop-size",
            help="Side of the 'auto' crop. \\[default: ¼ of the shorter side, 32–128]",
            show_default=False,
        ),
    ] = None,
    max_images: Annotated[
        int | None,
        typer.Option(
            "--max-images",
            help="Use at most N images, drawn at random with the seed.",
            show_default=False,
        ),
    ] = None,
    skip_incomplete: Annotated[
        bool,
        typer.Option(
            "--skip-incomplete", help="Leave out HR images some method has no output for."
        ),
    ] = False,
    title: Annotated[str, typer.Option("--title", help="Page title.")] = DEFAULT_TITLE,
    instructions: Annotated[
        str | None,
        typer.Option(
            "--instructions", help="Text shown to raters before they start.", show_default=False
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing folder and key.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, only the summary.")
    ] = False,
) -> None:
    """Build a static HTML ranking study: HR reference + K results per image, names hidden.

    Raters open the page, enter a rater id, rank every result 1..K (progress stays in the browser),
    and export their votes as a JSON file. The answer key is written outside the folder.
    """
    from spsr.atomic import check_writable
    from spsr.user_study import build_study, parse_crop
    methods = [_parse_method(text) for text in method]
    for line in _same_folders(hr, methods):
        warn(line)
    for where in (output.parent, None if key is None else key.parent):
        if where is not None:
            check_writable(where)  # before any image is read
    crop_box: CropBox | str | None = None
    if crop is not None:
        crop_box = "auto" if crop.strip().lower() == "auto" else parse_crop(crop)
    with progress(quiet) as bar:
        task = bar.add_task("writing study", total=None)
        result = build_study(
            hr,
            methods,
            output,
            key_path=key,
            seed=seed,
            crop=crop_box,
            crop_size=crop_size,
            max_images=max_images,
            skip_incomplete=skip_incomplete,
            title=title,
            instructions=instructions if instructions is not None else DEFAULT_INSTRUCTIONS,
            overwrite=force,
            on_image=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    k = result.key
    console.print(
        f"[green]study written:[/] {result.folder}/index.html — {len(k.images)} images × "
        f"{k.k} methods ({', '.join(k.methods)}), seed {k.seed}",
        highlight=False,
    )
    console.print(
        f"[green]answer key:[/] {result.key_path} "
        "[dim](keep it; do not publish it with the folder)[/]",
        highlight=False,
    )
    console.print(f"serve it with: python3 -m http.server -d {result.folder}", highlight=False)


def _p(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def _print_tally(result: StudyTally, chart: Path | None) -> None:
    key, collection = result.key, result.collection
    for rejected in collection.rejected:
        err_console.print(f"[yellow]skipped[/] {rejected.path}: {rejected.reason}", highlight=False)
    for dup in collection.duplicates:
        ignored = ", ".join(str(p) for p in dup.ignored)
        err_console.print(
            f"[yellow]rater {dup.rater!r} exported {len(dup.ignored) + 1} times:[/] "
            f"counted {dup.kept}, ignored {ignored}",
            highlight=False,
        )
    n_ignored = sum(len(d.ignored) for d in collection.duplicates)
    console.print(
        f"{result.n_votes} votes from {result.n_raters} raters on {result.n_images_voted} of "
        f"{len(key.images)} images ({len(collection.rejected)} files skipped, "
        f"{n_ignored} duplicate exports ignored)",
        highlight=False,
    )
    table = Table(title="Rank distribution (votes, share)", title_justify="left")
    table.add_column("method")
    for rank in range(1, key.k + 1):
        table.add_column(f"rank {rank}", justify="right")
    table.add_column("mean rank", justify="right")
    for m in result.method_order():
        row = [key.methods[m]]
        for rank in range(key.k):
            count = int(result.counts[m, rank])
            share = 100.0 * count / result.n_votes if result.n_votes else 0.0
            row.append(f"{count} ({share:.0f}%)")
        row.append(f"{result.mean_ranks[m]:.2f}")
        table.add_row(*row)
    console.print(table)
    if result.friedman is not None:
        f = result.friedman
        console.print(
            f"Friedman χ² = {f.statistic:.3f}, df = {f.k - 1}, p = {_p(f.p_value)} "
            f"over {f.n_blocks} votes",
            highlight=False,
        )
    elif key.k < 3:
        console.print("Friedman test needs 3 or more methods; see the Wilcoxon test below.")
    if result.pairwise:
        pairs = Table(
            title=f"Pairwise Wilcoxon signed-rank, Holm-corrected (α = {result.alpha})",
            title_justify="left",
        )
        columns: list[tuple[str, JustifyMethod]] = [
            ("A", "left"),
            ("B", "left"),
            ("A above B", "right"),
            ("B above A", "right"),
            ("p", "right"),
            ("p (Holm)", "right"),
            ("significant", "center"),
        ]
        for name, justify in columns:
            pairs.add_column(name, justify=justify)
        for p in result.pairwise:
            pairs.add_row(
                p.method_a,
                p.method_b,
                str(p.a_better),
                str(p.b_better),
                _p(p.p_value),
                _p(p.p_holm),
                "[green]yes[/]" if p.significant else "no",
            )
        console.print(pairs)
    if chart is not None:
        console.print(f"chart: {chart}", highlight=False)


def _default_chart_path(key_path: Path) -> Path:
    stem = key_path.stem
    stem = stem[: -len("-key")] if stem.endswith("-key") and len(stem) > 4 else stem
    return key_path.with_name(f"{stem}-ranks.png")


@app.command("tally", cls=SpsrCommand)
@guarded
def tally(
    votes: Annotated[
        list[Path],
        typer.Argument(
            help="Exported vote files, or folders of them (*.json).", show_default=False
        ),
    ],
    key: Annotated[
        Path,
        typer.Option("--key", "-k", help="The answer key written by build.", show_default=False),
    ],
    chart: Annotated[
        Path | None,
        typer.Option(
            "--chart",
            help="Stacked bar chart PNG to write. \\[default: NAME-ranks.png next to the key]",
            show_default=False,
        ),
    ] = None,
    no_chart: Annotated[bool, typer.Option("--no-chart", help="Do not draw the chart.")] = False,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Family-wise significance level of the pairwise tests.")
    ] = 0.05,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON on stdout instead of tables.")
    ] = False,
) -> None:
    """Tally exported votes: rank distribution, chart, Friedman and pairwise Wilcoxon tests.

    Malformed files and files of another study are reported and skipped; a rater who exported more
    than once counts once (the latest export).
    """
    from spsr.errors import WriteError
    from spsr.user_study import draw_rank_chart, save_chart, tally_files
    if not 0 < alpha < 1:
        raise fail("--alpha must be between 0 and 1")
    result = tally_files(key, votes, alpha=alpha)
    chart_path: Path | None = None
    unsaved: WriteError | None = None
    if not no_chart and result.n_votes:
        chart_path = chart if chart is not None else _default_chart_path(key)
        if chart_path.suffix.lower() != ".png":
            raise fail(f"--chart {chart_path}: the chart is written as PNG; use a .png name")
        title = f"{result.n_votes} votes from {result.n_raters} raters"
        methods = [result.key.methods[m] for m in result.method_order()]
        try:
            save_chart(
                draw_rank_chart(methods, result.counts[result.method_order()], title), chart_path
            )
        except WriteError as exc:  # the tally is printed all the same, then the failure
            unsaved, chart_path = exc, None
    if as_json:
        payload = result.to_json()
        payload["chart"] = str(chart_path) if chart_path else None
        typer.echo(json.dumps(payload, indent=1, ensure_ascii=False))
    else:
        _print_tally(result, chart_path)
    if unsaved is not None:
        raise fail(str(unsaved.with_note("the tally above is complete; only the chart is missing")))
    if result.n_votes == 0:
        raise fail(
            "no vote could be counted"
            + (" (see the skipped files above)" if result.collection.rejected else "")
        )
