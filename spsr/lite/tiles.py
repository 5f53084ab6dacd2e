"""The tile plan and blending windows of tiled inference, in NumPy.

The image is covered by tiles of ``tile`` LR pixels on a grid with stride ``tile - overlap`` (the
last tile flush with the border). Each tile is run with ``overlap`` extra pixels of real context
on every side that has neighbours (discarded afterwards), and neighbouring tiles are blended with
linear ramps over the ``overlap`` band. :class:`spsr.infer.TiledUpscaler` (PyTorch, with CUDA
out-of-memory recovery) and :func:`run_tiled` (NumPy, for converted models) both use
:func:`plan_tiles` and :func:`window`, so they blend with the same float32 arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Tiles per forward pass by default on a GPU (where a batch fills the device).
GPU_BATCH = 4


def default_batch(device_type: str) -> int:
    """Tiles per forward pass when none is given: :data:`GPU_BATCH` on a GPU, 1 on the CPU, where
    batches gain no speed and hold their activations at once (built-in model, a 512² image through
    128² tiles, AMD EPYC: OpenVINO f32 batch 4 77.3 s and 1,732 MiB peak, batch 1 72.8 s and
    610 MiB; PyTorch 126.4 s and 2,496 MiB against 104.0 s and 1,114 MiB; ``docs/guide/upscaling.md``)."""
    return 1 if device_type == "cpu" else GPU_BATCH


#: The overlap of tiles in LR pixels for scoring and ``spsr upscale`` (less for tiles too small for it).
EVAL_OVERLAP = 16


def eval_overlap(tile: int) -> int:
    """The overlap of evaluation tiles: :data:`EVAL_OVERLAP` LR pixels, less for tiny tiles (it
    must stay below half the tile), none without tiling."""
    return min(EVAL_OVERLAP, max(0, (tile - 1) // 2)) if tile else 0


TileCallback = Callable[[int, int], None]
"""Called as ``on_tiles(done, total)`` after each batch of tiles; the library itself never prints."""


@dataclass(frozen=True)
class Region:
    """A tile: the LR area it contributes (y0:y1, x0:x1) and the context-padded area it reads."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.cy1 - self.cy0, self.cx1 - self.cx0)


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def plan_tiles(h: int, w: int, tile: int, overlap: int) -> list[Region]:
    """Cover an ``h × w`` LR image with tiles; see the module docstring."""
    stride = max(1, tile - overlap)
    regions = []
    for y in _starts(h, tile, stride):
        for x in _starts(w, tile, stride):
            y1, x1 = min(y + tile, h), min(x + tile, w)
            regions.append(Region(y, y1, x, x1, max(0, y - overlap), min(h, y1 + overlap),
                                  max(0, x - overlap), min(w, x1 + overlap)))
    return regions


def ramp(length: int, band: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """Blending weights along one axis of a tile: 1, with linear ramps ``1/(band+1) … band/(band+1)``
    over ``band`` pixels at the ends that have a neighbour."""
    w = np.ones(length, dtype=np.float32)
    band = min(band, length // 2)
    if band > 0:
        r = np.arange(1, band + 1, dtype=np.float32) / np.float32(band + 1)
        if ramp_start:
            w[:band] = r
        if ramp_end:
            w[length - band:] = r[::-1]
    return w


def window_factors(r: Region, h: int, w: int, scale: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """The row and column ramps whose outer product is :func:`window`."""
    wy = ramp((r.y1 - r.y0) * scale, overlap * scale, r.y0 > 0, r.y1 < h)
    wx = ramp((r.x1 - r.x0) * scale, overlap * scale, r.x0 > 0, r.x1 < w)
    return wy, wx


def window(r: Region, h: int, w: int, scale: int, overlap: int) -> np.ndarray:
    """The ``(rows, cols)`` float32 blending window of tile ``r``'s core at the output scale."""
    wy, wx = window_factors(r, h, w, scale, overlap)
    return wy[:, None] * wx[None, :]


#: Output rows per band of :func:`divide_by_weights`.
WEIGHT_BAND_ROWS = 256


def divide_by_weights(acc: np.ndarray, regions: list[Region], h: int, w: int, scale: int, overlap: int) -> None:
    """Divide a blend accumulator by the sum of its tiles' windows, in place.

    The sum is formed a band of :data:`WEIGHT_BAND_ROWS` output rows at a time, adding the windows
    in the order of ``regions`` (the order their outputs were added), so each pixel gets the same
    float32 additions as a whole-image weight array would, without holding one (64 MiB at a 4096²
    output).

    Args:
        acc: ``(C, scale·h, scale·w)`` float32, the windowed tile outputs summed.
        regions: every tile added, in order (tiles may have been split after an out-of-memory).
        h: LR height.
        w: LR width.
        scale: the model's factor.
        overlap: the blending band in LR pixels.
    """
    s = scale
    factors = [(r, *window_factors(r, h, w, s, overlap)) for r in regions]
    out_h = h * s
    for b0 in range(0, out_h, WEIGHT_BAND_ROWS):
        b1 = min(out_h, b0 + WEIGHT_BAND_ROWS)
        band = np.zeros((b1 - b0, w * s), dtype=np.float32)
        for r, wy, wx in factors:
            t0, t1 = max(b0, r.y0 * s), min(b1, r.y1 * s)
            if t0 < t1:
                rows = wy[t0 - r.y0 * s:t1 - r.y0 * s]
                band[t0 - b0:t1 - b0, r.x0 * s:r.x1 * s] += rows[:, None] * wx[None, :]
        acc[:, b0:b1] /= band


def next_group(pending: list[Region], batch: int) -> list[Region]:
    """Take up to ``batch`` tiles of the first pending tile's shape out of ``pending``."""
    shape = pending[0].input_shape
    group = [r for r in pending if r.input_shape == shape][:batch]
    for r in group:
        pending.remove(r)
    return group


def run_tiled(
    img: np.ndarray,
    run: Callable[[np.ndarray], np.ndarray],
    scale: int,
    tile: int,
    overlap: int,
    batch: int,
    on_tiles: TileCallback | None = None,
) -> np.ndarray:
    """Run ``run`` over a ``(C, H, W)`` float32 image in tiles and blend the outputs.

    Args:
        img: the LR image.
        run: a batch ``(N, C, h, w)`` float32 → ``(N, C', scale·h, scale·w)`` float32.
        scale: the model's factor.
        tile: tile side in LR pixels (0: the whole image at once).
        overlap: context and blending band in LR pixels.
        batch: tiles per call of ``run``.
        on_tiles: progress, ``on_tiles(done, total)``.

    Returns:
        ``(C', scale·H, scale·W)`` float32, not clamped.
    """
    _, h, w = img.shape
    if tile == 0 or (h <= tile and w <= tile):
        if on_tiles is not None:
            on_tiles(0, 1)
        out = run(img[None])[0]
        if on_tiles is not None:
            on_tiles(1, 1)
        return out
    s = scale
    acc: np.ndarray | None = None
    pending = plan_tiles(h, w, tile, overlap)
    added: list[Region] = []
    total, done = len(pending), 0
    if on_tiles is not None:
        on_tiles(0, total)
    while pending:
        group = next_group(pending, batch)
        outs = run(np.stack([img[:, r.cy0:r.cy1, r.cx0:r.cx1] for r in group]))
        if acc is None:
            acc = np.zeros((outs.shape[1], h * s, w * s), dtype=np.float32)
        for r, out in zip(group, outs, strict=True):
            oy, ox = (r.y0 - r.cy0) * s, (r.x0 - r.cx0) * s
            core = out[:, oy:oy + (r.y1 - r.y0) * s, ox:ox + (r.x1 - r.x0) * s]
            win = window(r, h, w, s, overlap)
            acc[:, r.y0 * s:r.y1 * s, r.x0 * s:r.x1 * s] += core * win
            added.append(r)
        done += len(group)
        if on_tiles is not None:
            on_tiles(done, total)
    assert acc is not None  # plan_tiles gives at least one tile
    divide_by_weights(acc, added, h, w, s, overlap)
    return acc
