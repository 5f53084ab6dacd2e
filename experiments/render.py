"""Render the committed results of ``experiments/`` as Markdown tables and bar charts.

``python experiments/render.py nse [RESULTS_DIR]`` reads the validation JSONs that
``nse_cross_validation.sh`` writes (one per extractor, the ``--evaluate --json`` payload of
``spsr pretrain-nse``) and writes ``table.md`` and ``chart.png`` beside them:

* the cross-validation (TPAMI 2021 Fig. 6, App. B.2): F_P and F_J, each frozen with both heads
  re-fitted, contrastive top-1 and jigsaw accuracy on each test set, mean ± std over the repeats,
  chance level beside it;
* the contrastive sampling strategies (Fig. 14): horizontal, vertical and cross neighbours.

``python experiments/render.py g [RESULTS_DIR]`` combines the per-seed ``ablation.json`` of
``g_components.sh`` into one table (mean and each seed's value), and ``render.py fig8 FIG OUT.png``
draws its Fig. 8 analogue (HR / ESRGAN / SPSR-G crops over their gradient maps).

The chart is drawn with Pillow (no plotting library needed): one panel per comparison, each with
its own y-scale (contrastive top-1 is orders of magnitude below jigsaw accuracy), error bars of one
standard deviation, and the chance level as a dashed line.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

#: The extractors of the experiment: result file stem → label.
EXTRACTORS = {"nse_p": "F_P (contrastive)", "nse_j": "F_J (jigsaw)"}
SAMPLINGS = {"nse_p": "horizontal", "nse_p_v": "vertical", "nse_p_x": "cross"}
TASK_LABEL = {"contrastive": "contrastive top-1", "jigsaw": "jigsaw accuracy"}
COLOURS = [(52, 101, 164), (204, 102, 0), (78, 154, 6)]


@dataclass(frozen=True)
class Cell:
    """One score: accuracy, its spread over the repeats and the chance level (all in [0, 1])."""

    accuracy: float
    std: float
    chance: float
    repeats: int
    samples: int = 0
    protocol: str = "many-anchors"


def load_scores(results: Path) -> dict[str, dict[tuple[str, str], Cell]]:
    """``{run: {(dataset, task): Cell}}`` of every validation JSON in ``results``."""
    runs: dict[str, dict[tuple[str, str], Cell]] = {}
    for path in sorted(results.glob("nse_*.json")):
        payload = json.loads(path.read_text())
        runs[path.stem] = {
            (r["dataset"], r["task"]): Cell(
                r["accuracy"], r.get("std", 0.0), r["chance"], len(r.get("repeat_accuracies", [])),
                r.get("samples", 0), payload.get("protocol", "many-anchors"),  # older files: 16
            )
            for r in payload["results"]
        }
    return runs


def _pct(cell: Cell | None, digits: int = 2) -> str:
    if cell is None:
        return "—"
    spread = f" ± {100 * cell.std:.{digits}f}" if cell.repeats > 1 else ""
    return f"{100 * cell.accuracy:.{digits}f}{spread}"


def datasets_of(runs: dict[str, dict[tuple[str, str], Cell]]) -> list[str]:
    """Test sets in first-seen order."""
    seen: dict[str, None] = {}
    for cells in runs.values():
        for dataset, _ in cells:
            seen.setdefault(dataset, None)
    return list(seen)


def markdown(runs: dict[str, dict[tuple[str, str], Cell]]) -> str:
    """The two tables (cross-validation, sampling strategies) as Markdown, accuracies in %."""
    sets = datasets_of(runs)
    lines = [("Cross-validation (TPAMI 2021 Fig. 6): accuracy in %, mean ± std over the repeats; "
              "each extractor frozen, both heads re-fitted."), ""]
    header = ["extractor"] + [f"{d} {TASK_LABEL[t]}" for t in TASK_LABEL for d in sets]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for stem, label in EXTRACTORS.items():
        if stem in runs:
            cells = [_pct(runs[stem].get((d, t))) for t in TASK_LABEL for d in sets]
            lines.append("| " + " | ".join([label, *cells]) + " |")
    chance = []
    for t in TASK_LABEL:
        for d in sets:
            hit = next((c[(d, t)] for c in runs.values() if (d, t) in c), None)
            chance.append("—" if hit is None else f"{100 * hit.chance:.3f}")
    lines.append("| " + " | ".join(["chance", *chance]) + " |")
    lines += ["", ("Contrastive sampling strategies (TPAMI 2021 Fig. 14): contrastive top-1 in %, "
                   "each F_P trained and scored with its own neighbours."), ""]
    header = ["sampling"] + [f"{d} contrastive top-1" for d in sets] + ["chance"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for stem, label in SAMPLINGS.items():
        if stem in runs:
            got = [runs[stem].get((d, "contrastive")) for d in sets]
            cells = [_pct(c) for c in got]
            # cross sampling excludes more positions: fewer negatives, a higher chance level
            chances = " / ".join(f"{100 * c.chance:.3f}" for c in got if c is not None)
            lines.append("| " + " | ".join([label, *cells, chances or "—"]) + " |")
    lines += ["", _protocol_note(runs)]
    return "\n".join(lines) + "\n"


def _protocol_note(runs: dict[str, dict[tuple[str, str], Cell]]) -> str:
    """How the accuracies were sampled: the protocol and the samples of one repeat per set."""
    cells = [c for r in runs.values() for c in r.values()]
    protocols = sorted({c.protocol for c in cells})
    what = {"paper": "one target per 200×200 crop, one 2×2 grid per 84×84 crop (TPAMI 2021 §5.2 / "
                     "App. B.2)", "many-anchors": "16 targets / grids per crop"}
    per_repeat = []
    for task in TASK_LABEL:
        for dataset in datasets_of(runs):
            hit = next((r[(dataset, task)] for r in runs.values() if (dataset, task) in r), None)
            if hit is not None and hit.repeats:
                per_repeat.append(f"{dataset} {task} {hit.samples // hit.repeats}")
    return ("Sampling: " + "; ".join(what.get(p, p) for p in protocols)
            + ". Samples per repeat: " + ", ".join(per_repeat) + ".")


# ----------------------------------------------------------------------------------- the chart

W_PANEL, H_PANEL, MARGIN_L, MARGIN_B, MARGIN_T = 360, 300, 56, 56, 40


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _panel(
    draw: ImageDraw.ImageDraw,
    x0: int,
    title: str,
    groups: list[str],
    series: list[tuple[str, list[Cell | None]]],
) -> None:
    """Grouped bars (one group per test set, one bar per series) with ±1 std whiskers and a dashed
    chance line per group, y from 0 to a rounded maximum, in percent."""
    font, small = _font(13), _font(11)
    top, bottom = MARGIN_T, MARGIN_T + H_PANEL
    left, right = x0 + MARGIN_L, x0 + MARGIN_L + W_PANEL - 20
    values = [100 * (c.accuracy + c.std) for _, cs in series for c in cs if c is not None]
    values += [100 * c.chance for _, cs in series for c in cs if c is not None]
    peak = max([*values, 1e-3]) * 1.15
    step = _nice_step(peak / 5)
    ymax = step * (int(peak / step) + 1)

    def y(v: float) -> float:
        return bottom - (bottom - top) * (100 * v) / ymax

    draw.text((x0 + MARGIN_L, 8), title, fill="black", font=font)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")
    tick = 0.0
    while tick <= ymax + 1e-12:
        yy = bottom - (bottom - top) * tick / ymax
        draw.line([(left - 4, yy), (left, yy)], fill="black")
        draw.text((left - 6, yy), _tick_label(tick, step), fill="black", font=small, anchor="rm")
        tick += step
    draw.text((x0 + 6, top - 18), "%", fill="black", font=small)
    group_w = (right - left) / max(1, len(groups))
    bar_w = group_w * 0.7 / max(1, len(series))
    for g, name in enumerate(groups):
        g0 = left + g * group_w + group_w * 0.15
        draw.text((left + (g + 0.5) * group_w, bottom + 6), name, fill="black", font=font, anchor="ma")
        chance = None
        for s, (_, cells) in enumerate(series):
            cell = cells[g]
            if cell is None:
                continue
            chance = cell.chance
            bx = g0 + s * bar_w
            draw.rectangle([bx + 2, y(cell.accuracy), bx + bar_w - 2, bottom],
                           fill=COLOURS[s % len(COLOURS)])
            if cell.repeats > 1:
                cx = bx + bar_w / 2
                lo, hi = y(max(0.0, cell.accuracy - cell.std)), y(cell.accuracy + cell.std)
                draw.line([(cx, lo), (cx, hi)], fill="black", width=1)
                draw.line([(cx - 4, hi), (cx + 4, hi)], fill="black")
                draw.line([(cx - 4, lo), (cx + 4, lo)], fill="black")
        if chance is not None:
            cy = y(chance)
            xa = g0
            while xa < g0 + group_w * 0.7:
                draw.line([(xa, cy), (min(xa + 5, g0 + group_w * 0.7), cy)], fill=(160, 0, 0), width=2)
                xa += 9
    ly = bottom + 26
    lx = left
    for s, (label, _) in enumerate(series):
        draw.rectangle([lx, ly, lx + 10, ly + 10], fill=COLOURS[s % len(COLOURS)])
        draw.text((lx + 14, ly - 1), label, fill="black", font=small)
        lx += 16 + int(draw.textlength(label, font=small)) + 10
    draw.line([(lx, ly + 5), (lx + 12, ly + 5)], fill=(160, 0, 0), width=2)
    draw.text((lx + 16, ly - 1), "chance", fill="black", font=small)


def _nice_step(raw: float) -> float:
    import math

    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def _tick_label(value: float, step: float) -> str:
    fraction = f"{step:.4f}".rstrip("0").split(".")[1]  # 2.5 → "5", 0.25 → "25", 5 → ""
    return f"{value:.{len(fraction)}f}"


def chart(runs: dict[str, dict[tuple[str, str], Cell]]) -> Image.Image:
    """Three panels: contrastive top-1 and jigsaw accuracy of F_P vs F_J, and the samplings."""
    sets = datasets_of(runs)
    panels = []
    for task, task_label in TASK_LABEL.items():
        series = [(label, [runs[stem].get((d, task)) for d in sets])
                  for stem, label in EXTRACTORS.items() if stem in runs]
        panels.append((f"{task_label} (Fig. 6)", series))
    series = [(label, [runs[stem].get((d, "contrastive")) for d in sets])
              for stem, label in SAMPLINGS.items() if stem in runs]
    panels.append(("contrastive top-1 by sampling (Fig. 14)", series))
    width = len(panels) * (W_PANEL + MARGIN_L)
    image = Image.new("RGB", (width, MARGIN_T + H_PANEL + MARGIN_B), "white")
    draw = ImageDraw.Draw(image)
    for i, (title, ser) in enumerate(panels):
        _panel(draw, i * (W_PANEL + MARGIN_L), title, sets, ser)
    return image


def render_nse(results: Path) -> tuple[Path, Path]:
    """Write ``table.md`` and ``chart.png`` into ``results``; returns their paths."""
    runs = load_scores(results)
    if not runs:
        raise SystemExit(f"no nse_*.json results in {results}: run experiments/nse_cross_validation.sh")
    table, png = results / "table.md", results / "chart.png"
    table.write_text(markdown(runs))
    chart(runs).save(png, optimize=True)
    return table, png


# --------------------------------------------------------------------------- SPSR-G components

METRIC_LABEL = {"psnr": "PSNR ↑", "ssim": "SSIM ↑", "niqe": "NIQE ↓", "gradmap_l1": "GradMap L1 ↓"}
DIGITS = {"psnr": 2, "ssim": 4, "niqe": 3, "gradmap_l1": 4}


def load_seeds(results: Path) -> list[dict]:
    """The ``ablation.json`` of every ``seed*/`` folder, in seed order."""
    return [json.loads(f.read_text(encoding="utf-8")) for f in sorted(results.glob("seed*/ablation.json"))]


def g_markdown(seeds: list[dict]) -> str:
    """One table over the seeds: per row and column the mean and, in brackets, each seed's value."""
    first = seeds[0]
    datasets, metrics = first["datasets"], first["metrics"]
    head = ["Method"] + [f"{d} {METRIC_LABEL.get(m, m)}" for d in datasets for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|:--|" + "--:|" * (len(head) - 1)]
    for i, row in enumerate(first["rows"]):
        cells = [row["name"]]
        for d in datasets:
            for m in metrics:
                vals = [s["rows"][i]["mean"].get(d, {}).get(m) for s in seeds]
                vals = [v for v in vals if isinstance(v, (int, float))]
                if len(vals) < len(seeds):
                    cells.append("–")
                    continue
                k = DIGITS.get(m, 3)
                mean = sum(vals) / len(vals)
                cells.append(f"{mean:.{k}f} ({' / '.join(f'{v:.{k}f}' for v in vals)})")
        lines.append("| " + " | ".join(cells) + " |")
    seeds_text = ", ".join(str(s.get("overrides", {}).get("run.seed", "?")) for s in seeds)
    lines.append("")
    lines.append(f"Mean over {len(seeds)} seeds ({seeds_text}); in brackets each seed's value.")
    return "\n".join(lines) + "\n"


def render_g(results: Path) -> Path:
    seeds = load_seeds(results)
    if not seeds:
        raise SystemExit(f"no seed*/ablation.json in {results}: run experiments/g_components.sh")
    out = results / "table.md"
    out.write_text(g_markdown(seeds), encoding="utf-8")
    return out


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.rglob(pattern))
    if not found:
        raise SystemExit(f"no {pattern} under {folder}")
    return found[0]


def fig8_panel(fig: Path, crop: int = 128, zoom: int = 2) -> Image.Image:
    """HR / ESRGAN / SPSR-G crops (top) over their gradient maps M(·) (bottom), labelled.

    ``fig`` is the folder ``g_components.sh`` fills: ``Set14/<image>.png``, ``sr/<row>/…``,
    ``grad/hr``, ``grad/<row>``. The crop is the ``crop``² window of largest HR gradient energy,
    shown ``zoom``× with nearest-neighbour pixels.
    """
    import numpy as np

    hr_file = _one(fig / "Set14", "*.png")
    stem = hr_file.stem
    columns = [("HR", hr_file, _one(fig / "grad" / "hr", f"{stem}*.png"))]
    for row, label in (("esrgan", "ESRGAN"), ("spsr-g", "SPSR-G")):
        columns.append((label, _one(fig / "sr" / row, f"{stem}*.png"), _one(fig / "grad" / row, f"{stem}*.png")))
    grad_hr = np.asarray(Image.open(columns[0][2]).convert("L"), dtype=np.float64)
    step = crop // 4
    best, y0, x0 = -1.0, 0, 0
    for y in range(0, max(1, grad_hr.shape[0] - crop + 1), step):
        for x in range(0, max(1, grad_hr.shape[1] - crop + 1), step):
            energy = float(grad_hr[y:y + crop, x:x + crop].sum())
            if energy > best:
                best, y0, x0 = energy, y, x
    font = _font(18)
    side, label_h, gap = crop * zoom, 26, 6
    canvas = Image.new("RGB", (3 * side + 4 * gap, 2 * side + 2 * label_h + 3 * gap), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, image, grad) in enumerate(columns):
        x = gap + i * (side + gap)
        for j, (path, caption) in enumerate(((image, label), (grad, f"M({label})"))):
            with Image.open(path) as im:
                tile = im.convert("RGB").crop((x0, y0, x0 + crop, y0 + crop)).resize((side, side), Image.NEAREST)
            y = gap + j * (side + label_h + gap)
            draw.text((x, y), caption, fill="black", font=font)
            canvas.paste(tile, (x, y + label_h))
    return canvas


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    if argv and argv[0] == "fig8" and len(argv) == 3:
        fig8_panel(Path(argv[1])).save(argv[2], optimize=True)
        print(f"written: {argv[2]}")
        return 0
    if argv and argv[0] == "g":
        results = Path(argv[1]) if len(argv) > 1 else here / "results" / "g_components"
        print(f"written: {render_g(results)}")
        return 0
    if not argv or argv[0] != "nse":
        print("usage: python experiments/render.py nse|g [RESULTS_DIR] | fig8 FIG_DIR OUT.png", file=sys.stderr)
        return 2
    results = Path(argv[1]) if len(argv) > 1 else here / "results" / "nse_cross_validation"
    for path in render_nse(results):
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
