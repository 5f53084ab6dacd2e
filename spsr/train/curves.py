"""Training curves of one or more runs from their ``log.jsonl``, drawn with Pillow (``spsr plot``).

For users without TensorBoard: one panel per logged loss term (``g/pixel``, ``d/loss``...) and
per validation score (PSNR, SSIM), every run in its own colour, on a shared iteration axis per
panel. A resumed run's log repeats the iterations between its last checkpoint and the
interruption; the later session's record wins, as in the event files.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from spsr.atomic import write_bytes_atomic
from spsr.errors import ConfigError
from spsr.run_folder import LOG_FILE

# Colour-blind friendly (Okabe-Ito), then greys.
PALETTE = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0),
           (86, 180, 233), (0, 0, 0), (120, 120, 120)]
_VAL_KEYS = ("psnr", "ssim")
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


@dataclass
class RunCurves:
    """The series of one run: tag → sorted ``(iteration, value)`` points."""

    label: str
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def read_curves(run: str | os.PathLike[str], label: str | None = None) -> RunCurves:
    """The loss and validation series of a run folder (or a ``log.jsonl`` file).

    Raises:
        ConfigError: no log, or a log that cannot be read.
    """
    from spsr.train.log import read_log

    path = Path(run)
    log = path / LOG_FILE if path.is_dir() else path
    if not log.is_file():
        raise ConfigError(f"{path} has no {LOG_FILE}: give a training run folder")
    try:
        records = read_log(log)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {log}: {exc}") from None
    name = label or (path.name if path.is_dir() else path.parent.name)
    points: dict[str, dict[int, float]] = {}
    for rec in records:
        kind, it = rec.get("kind"), rec.get("iteration")
        if not isinstance(it, int):
            continue
        if kind == "train":
            keys = [k for k in rec if "/" in k and not k.startswith("lr/")]
            tags = {k: k for k in keys}
        elif kind == "val":
            tags = {k: f"val/{k}" for k in _VAL_KEYS if k in rec}
        else:
            continue
        for key, tag in tags.items():
            value = rec[key]
            if isinstance(value, (int, float)) and math.isfinite(value):
                points.setdefault(tag, {})[it] = float(value)  # a later session's record wins
    return RunCurves(name, {t: sorted(p.items()) for t, p in points.items()})


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font of one size
        return ImageFont.load_default()


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:.4g}"


def panel_tags(runs: Sequence[RunCurves]) -> list[str]:
    """The panels: loss terms (in first-seen order), then the validation scores."""
    tags: list[str] = []
    for run in runs:
        tags += [t for t in run.series if t not in tags]
    return [t for t in tags if not t.startswith("val/")] + [t for t in tags if t.startswith("val/")]


def draw_curves(runs: Sequence[RunCurves], columns: int = 2, title: str = "") -> Image.Image:
    """One panel per tag, one line per run.

    Raises:
        ConfigError: no run has anything to plot.
    """
    tags = panel_tags(runs)
    if not tags:
        raise ConfigError("nothing to plot: the logs hold no training or validation records yet")
    pw, ph = 440, 260  # panel size
    ml, mr, mt, mb = 64, 16, 28, 36  # margins inside a panel: axis labels, title
    font, small = _font(14), _font(11)
    legend_h = 24 + 18 * ((len(runs) + 2) // 3)
    columns = max(1, min(columns, len(tags)))
    rows = math.ceil(len(tags) / columns)
    top = (28 if title else 8) + legend_h
    image = Image.new("RGB", (columns * pw, top + rows * ph), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((12, 8), title, fill="black", font=font)
    for i, run in enumerate(runs):
        x, y = 12 + (i % 3) * (pw * columns // 3), top - legend_h + 8 + 18 * (i // 3)
        colour = PALETTE[i % len(PALETTE)]
        draw.line([(x, y + 7), (x + 22, y + 7)], fill=colour, width=3)
        draw.text((x + 28, y), run.label, fill="black", font=small)
    for p, tag in enumerate(tags):
        ox, oy = (p % columns) * pw, top + (p // columns) * ph
        x0, y0, x1, y1 = ox + ml, oy + mt, ox + pw - mr, oy + ph - mb
        lines = [(i, run.series[tag]) for i, run in enumerate(runs) if run.series.get(tag)]
        xs = [it for _, pts in lines for it, _ in pts]
        ys = [v for _, pts in lines for _, v in pts]
        draw.text((x0, oy + 6), tag, fill="black", font=font)
        draw.rectangle([x0, y0, x1, y1], outline=(160, 160, 160))
        xlo, xhi = min(xs), max(xs)
        ylo, yhi = min(ys), max(ys)
        if yhi - ylo < 1e-12:
            ylo, yhi = ylo - 0.5 * (abs(ylo) or 1), yhi + 0.5 * (abs(yhi) or 1)
        pad = 0.05 * (yhi - ylo)
        ylo, yhi = ylo - pad, yhi + pad
        xspan = (xhi - xlo) or 1

        def px(it: float, x0: int = x0, x1: int = x1, xlo: float = xlo, xspan: float = xspan) -> float:
            return x0 + (it - xlo) / xspan * (x1 - x0)

        def py(v: float, y0: int = y0, y1: int = y1, ylo: float = ylo, yhi: float = yhi) -> float:
            return y1 - (v - ylo) / (yhi - ylo) * (y1 - y0)

        for t in _ticks(ylo, yhi):
            yy = py(t)
            draw.line([(x0, yy), (x1, yy)], fill=(232, 232, 232))
            text = _label(t)
            w = draw.textlength(text, font=small)
            draw.text((x0 - 6 - w, yy - 6), text, fill=(80, 80, 80), font=small)
        for t in _ticks(xlo, xhi) if xhi > xlo else [xlo]:
            xx = px(t)
            draw.line([(xx, y1), (xx, y1 + 4)], fill=(120, 120, 120))
            text = _label(t)
            w = draw.textlength(text, font=small)
            draw.text((xx - w / 2, y1 + 6), text, fill=(80, 80, 80), font=small)
        for i, pts in lines:
            colour = PALETTE[i % len(PALETTE)]
            coords = [(px(it), py(v)) for it, v in pts]
            if len(coords) > 1:
                draw.line(coords, fill=colour, width=2)
            if len(coords) <= 40:  # few points (validation): mark each
                for cx, cy in coords:
                    draw.ellipse([cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5], fill=colour)
        draw.text((x1 - 60, y1 + 20), "iteration", fill=(80, 80, 80), font=small)
    return image


def save_curves(
    runs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    title: str = "",
    labels: Sequence[str] | None = None,
) -> Path:
    """Read the runs' logs, draw their curves and write the picture (PNG, JPEG or WebP by suffix).

    Args:
        runs: run folders (or ``log.jsonl`` files).
        out: the picture to write.
        title: text above the curves.
        labels: one legend entry per run (default: the folder names, made unique).

    Raises:
        ConfigError: an unsupported suffix, a folder without a log, or nothing to plot.
    """
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{out}: write the curves as .png, .jpg or .webp")
    given: list[str | None] = list(labels) if labels is not None else [None] * len(runs)
    curves = [read_curves(r, label) for r, label in zip(runs, given, strict=True)]
    names = [c.label for c in curves]
    for c, run in zip(curves, runs, strict=True):  # same folder names elsewhere: tell them apart
        if labels is None and names.count(c.label) > 1:
            c.label = str(Path(run))
    image = draw_curves(curves, title=title)
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    write_bytes_atomic(out, buf.getvalue())
    return out
