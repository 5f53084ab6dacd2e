"""The rank-distribution chart (as TPAMI 2021 Fig. 9): one stacked bar per method, drawn with Pillow.

Each bar is 100 % of that method's votes, split by the rank it received: rank 1 (best) at the
bottom in the darkest colour, the worst rank on top in the lightest.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from spsr.atomic import write_bytes_atomic

_BEST = (22, 58, 120)
_WORST = (205, 222, 245)


def rank_colours(k: int) -> list[tuple[int, int, int]]:
    """Colours for ranks 1..K, from dark (best) to light (worst).

    Args:
        k: number of ranks.

    Returns:
        K RGB tuples.
    """
    if k == 1:
        return [_BEST]
    return [
        tuple(round(b + (w - b) * i / (k - 1)) for b, w in zip(_BEST, _WORST, strict=True))  # type: ignore[misc]
        for i in range(k)
    ]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: bitmap font of one size
        return ImageFont.load_default()


def _text_size(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont
) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def draw_rank_chart(methods: Sequence[str], counts: np.ndarray, title: str = "") -> Image.Image:
    """Draw the stacked bar chart.

    Args:
        methods: method names, one bar each, left to right.
        counts: ``(M, K)`` votes per method and rank.
        title: text above the chart.

    Returns:
        an RGB image.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n_methods, k = counts.shape
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    font, small, big = _font(14), _font(12), _font(16)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    bar_width = max(70, max(_text_size(probe, name, font)[0] for name in methods) + 16)
    gap = 28
    left, top, plot_height, bottom = 64, 56, 320, 48
    legend_width = _text_size(probe, f"rank {k} (worst)", small)[0] + 48
    width = left + n_methods * (bar_width + gap) + legend_width + 16
    height = top + plot_height + bottom
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    colours = rank_colours(k)

    if title:
        draw.text((left, 16), title, fill=(20, 20, 20), font=big)
    for percent in range(0, 101, 25):
        y = top + plot_height - plot_height * percent / 100
        draw.line([(left, y), (left + n_methods * (bar_width + gap), y)], fill=(225, 225, 225))
        label = f"{percent}%"
        tw, th = _text_size(draw, label, small)
        draw.text((left - tw - 8, y - th / 2 - 2), label, fill=(90, 90, 90), font=small)
    draw.line([(left, top), (left, top + plot_height)], fill=(120, 120, 120))

    for m, name in enumerate(methods):
        x0 = left + gap / 2 + m * (bar_width + gap)
        y = float(top + plot_height)
        for rank in range(k):
            segment = shares[m, rank] * plot_height
            if segment <= 0:
                continue
            draw.rectangle(
                [x0, y - segment, x0 + bar_width, y], fill=colours[rank], outline="white"
            )
            if segment >= 16:
                text = f"{100 * shares[m, rank]:.0f}%"
                tw, th = _text_size(draw, text, small)
                ink = (255, 255, 255) if rank < (k + 1) / 2 else (20, 20, 20)
                draw.text(
                    (x0 + (bar_width - tw) / 2, y - segment / 2 - th / 2 - 2),
                    text,
                    fill=ink,
                    font=small,
                )
            y -= segment
        tw, _ = _text_size(draw, name, font)
        draw.text(
            (x0 + (bar_width - tw) / 2, top + plot_height + 10), name, fill=(20, 20, 20), font=font
        )

    lx = left + n_methods * (bar_width + gap) + 16
    for rank in range(k):
        ly = top + (k - 1 - rank) * 22
        draw.rectangle([lx, ly, lx + 16, ly + 16], fill=colours[rank])
        label = (
            "rank 1 (best)"
            if rank == 0
            else (f"rank {k} (worst)" if rank == k - 1 else f"rank {rank + 1}")
        )
        draw.text((lx + 24, ly), label, fill=(20, 20, 20), font=small)
    return image


def save_chart(image: Image.Image, path: Path) -> None:
    """Save a chart as PNG atomically (temporary file in the same folder, then rename).

    Args:
        image: the chart.
        path: destination ``.png`` file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
