"""The ablation table in the papers' layout: one row per configuration, the metric columns of each
dataset side by side, the best value per column marked (bold; second best in italics when there
are three rows or more), and which way is better noted. Written as Markdown, CSV and JSON.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spsr.ablation.runner import RowResult
from spsr.ablation.states import OK
from spsr.atomic import write_text_atomic
from spsr.metrics.conventions import Scoring
from spsr.metrics.registry import METRICS, conventions_note

TABLE_STEM = "ablation"
# Digits shown per metric: the papers print PSNR with 3 decimals in their ablation tables.
DECIMALS = {**{m: info.decimals for m, info in METRICS.items()}, "psnr": 3}

Marks = dict[str, dict[str, list[str]]]  # dataset -> metric -> row names


@dataclass
class AblationTable:
    """Everything a table file says.

    Attributes:
        title: caption.
        grid: preset name or spec file stem.
        source: the paper's table whose rows it runs ("" for a custom grid).
        datasets: dataset names, in column order.
        metrics: metric names, in column order.
        rows: the rows, in table order.
        describe: the metric suite's settings and conventions (``MetricSuite.describe()``).
        info: scale, iterations, data, inits, NSEs... (copied into the JSON).
    """

    title: str
    grid: str
    source: str
    datasets: list[str]
    metrics: list[str]
    rows: list[RowResult]
    describe: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def row_means(row: RowResult) -> dict[str, dict[str, float]]:
    """``{dataset: {metric: mean}}`` of a row (empty unless it is ``ok``)."""
    if row.status != OK:
        return {}
    return {r.dataset: r.means() for r in row.results}


def best_marks(table: AblationTable) -> tuple[Marks, Marks]:
    """The best and the second-best rows per dataset and metric (ties all marked; the second best
    only when at least three rows have a value)."""
    best: Marks = {}
    second: Marks = {}
    means = [(row.name, row_means(row)) for row in table.rows]
    for dataset in table.datasets:
        for metric in table.metrics:
            values = [
                (name, m[dataset][metric])
                for name, m in means
                if dataset in m and metric in m[dataset] and math.isfinite(m[dataset][metric])
            ]
            if not values:
                continue
            higher = METRICS[metric].higher_is_better
            ranked = sorted({v for _, v in values}, reverse=higher)
            best.setdefault(dataset, {})[metric] = [n for n, v in values if v == ranked[0]]
            if len(values) >= 3 and len(ranked) >= 2:
                second.setdefault(dataset, {})[metric] = [n for n, v in values if v == ranked[1]]
    return best, second



def metric_cells(
    table: AblationTable,
    name: str,
    means: dict[str, dict[str, float]],
    best: Marks,
    second: Marks,
    bold: tuple[str, str],
    italic: tuple[str, str],
) -> list[str]:
    """One row's metric cells in column order, best wrapped in ``bold``, second in ``italic``."""
    cells = []
    for d in table.datasets:
        for m in table.metrics:
            value = means.get(d, {}).get(m)
            if value is None:
                cells.append("–")
                continue
            text = f"{value:.{DECIMALS[m]}f}"
            if name in best.get(d, {}).get(m, []):
                text = f"{bold[0]}{text}{bold[1]}"
            elif name in second.get(d, {}).get(m, []):
                text = f"{italic[0]}{text}{italic[1]}"
            cells.append(text)
    return cells

def _arrow(metric: str) -> str:
    return "↑" if METRICS[metric].higher_is_better else "↓"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _conventions_line(table: AblationTable) -> str:
    settings = table.describe.get("settings", {})
    scoring = Scoring.from_record(settings)
    if scoring is not None:
        return conventions_note(scoring, table.metrics)
    parts = []  # a table written before protocols were recorded
    if any(m in table.metrics for m in ("psnr", "ssim")):
        channel = "Y" if settings.get("y_channel", True) else "RGB"
        parts.append(f"PSNR/SSIM on {channel}, border {settings.get('crop_border', '?')} shaved")
    if any(m in table.metrics for m in ("niqe", "ma", "pi")):
        parts.append(f"NIQE/Ma/PI on Y, border {settings.get('pi_border', '?')} shaved")
    if "lpips" in table.metrics:
        parts.append("LPIPS (AlexNet, v0.1) on RGB in [-1, 1]")
    return "; ".join(parts)


def table_markdown(table: AblationTable) -> str:
    """The table as GitHub-flavoured Markdown, with its caption, conventions and notes."""
    best, second = best_marks(table)
    info = table.info
    lines = [f"### {table.title}", ""]
    about = []
    if table.source:
        about.append(f"Rows of {table.source} (this run's numbers, not the paper's).")
    if info.get("scale"):
        about.append(f"×{info['scale']}")
    if info.get("iterations"):
        about.append(f"{info['iterations']} iterations per configuration")
    if info.get("init"):
        about.append(f"from `{info['init']}`")
    if about:
        lines += [" · ".join(about), ""]
    header = ["Method"] + [
        f"{d} {METRICS[m].label} {_arrow(m)}" for d in table.datasets for m in table.metrics
    ]
    lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
    lines.append("|:--" + "|--:" * (len(header) - 1) + "|")
    notes = []
    for row in table.rows:
        means = row_means(row)
        label = _md_escape(row.name)
        if row.status != OK:
            notes.append(f"- **{label}**: {row.status}: {_md_escape(row.reason)}")
            label = f"{label} ({row.status})"
        cells = [label, *metric_cells(table, row.name, means, best, second, ("**", "**"), ("_", "_"))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "↑ higher is better, ↓ lower is better; **bold**: best per column"
        + (", _italics_: second best" if second else "")
        + ".",
    ]
    conventions = _conventions_line(table)
    if conventions:
        lines.append(conventions + ".")
    if notes:
        lines += ["", "Not in the table:", "", *notes]
    return "\n".join(lines) + "\n"


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def table_csv(table: AblationTable) -> str:
    """One line per configuration: name, variant, status, iterations, ``<dataset>/<metric>``
    means (full precision), the columns where it is best / second best, reason, run folder."""
    best, second = best_marks(table)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = [f"{d}/{m}" for d in table.datasets for m in table.metrics]
    writer.writerow(
        [
            "configuration",
            "variant",
            "status",
            "iterations",
            *columns,
            "best",
            "second_best",
            "reason",
            "run",
        ]
    )

    def marked(marks: Marks, name: str) -> str:
        return " ".join(
            f"{d}/{m}" for d, per in marks.items() for m, names in per.items() if name in names
        )

    for row in table.rows:
        means = row_means(row)
        values = [
            _csv_number(means.get(d, {}).get(m)) for d in table.datasets for m in table.metrics
        ]
        writer.writerow(
            [
                row.name,
                row.planned.config.variant,
                row.status,
                row.iteration or "",
                *values,
                marked(best, row.name),
                marked(second, row.name),
                row.reason,
                str(row.planned.run_dir),
            ]
        )
    return buf.getvalue()


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def table_json(table: AblationTable) -> str:
    """Everything as JSON: settings, conventions, which way is better, per row its configuration,
    status, means and per-image scores, and the best / second-best rows per column."""
    best, second = best_marks(table)
    rows = []
    for row in table.rows:
        c = row.planned.config
        rows.append(
            {
                "name": c.name,
                "variant": c.variant,
                "arch": c.arch,
                "backbone": c.backbone,
                "overrides": dict(c.overrides),
                "init": c.init,
                "nse": c.nse,
                "train": c.train,
                "note": c.note,
                "run": str(row.planned.run_dir),
                "status": row.status,
                "reason": row.reason,
                "iteration": row.iteration,
                "mean": {
                    d: {m: _json_number(v) for m, v in per.items()}
                    for d, per in row_means(row).items()
                },
                "images": {
                    r.dataset: {n: {m: _json_number(v) for m, v in s.items()} for n, s in r.images}
                    for r in row.results
                }
                if row.status == OK
                else {},
            }
        )
    payload = {
        "title": table.title,
        "grid": table.grid,
        "source": table.source,
        **table.info,
        "datasets": table.datasets,
        "metrics": table.metrics,
        "better": {m: "higher" if METRICS[m].higher_is_better else "lower" for m in table.metrics},
        **{k: v for k, v in table.describe.items() if k != "better"},
        "rows": rows,
        "best": best,
        "second_best": second,
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def write_tables(out: str | os.PathLike[str], table: AblationTable) -> dict[str, Path]:
    """Write ``ablation.md``, ``ablation.csv`` and ``ablation.json`` into ``out`` (atomically).

    Returns:
        ``{"md": path, "csv": path, "json": path}``.
    """
    folder = Path(out)
    texts = {"md": table_markdown(table), "csv": table_csv(table), "json": table_json(table)}
    return {
        ext: write_text_atomic(folder / f"{TABLE_STEM}.{ext}", text) for ext, text in texts.items()
    }


def order_metrics(wanted: Sequence[str], available: Sequence[str]) -> list[str]:
    """The metrics of ``available`` in the order of ``wanted`` (the rest after, as available)."""
    first = [m for m in wanted if m in available]
    return first + [m for m in available if m not in first]
