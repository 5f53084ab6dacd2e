"""The NumPy tiling of spsr.lite blends exactly as the PyTorch upscaler does, and never imports torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from spsr.archs import ArchSpec, build_model
from spsr.engines.base import RunSpec
from spsr.engines.torch_engine import TorchRunner
from spsr.infer import TiledUpscaler
from spsr.lite.tiles import (
    Region,
    divide_by_weights,
    eval_overlap,
    plan_tiles,
    ramp,
    run_tiled,
    window,
)


@pytest.fixture(scope="module")
def runner() -> TorchRunner:
    torch.manual_seed(0)
    model = build_model(ArchSpec("spsr", 4, nf=8, nb=1, gc=4)).eval()
    return TorchRunner(RunSpec(model, False, torch.float32, torch.device("cpu")))


@pytest.mark.parametrize(("h", "w", "tile", "overlap", "batch"),
                         [(37, 45, 16, 4, 3), (20, 24, 16, 4, 1), (33, 17, 12, 5, 4), (9, 9, 16, 4, 2),
                          (21, 30, 0, 0, 1)])
def test_numpy_tiling_equals_the_torch_upscaler_bit_for_bit(
    runner: TorchRunner, h: int, w: int, tile: int, overlap: int, batch: int
) -> None:
    x = np.random.default_rng(h * w).random((3, h, w), dtype=np.float32)
    calls: list[tuple[int, ...]] = []

    def run(b: np.ndarray) -> np.ndarray:
        calls.append(b.shape)
        return runner(torch.from_numpy(b)).numpy()

    progress: list[tuple[int, int]] = []
    out = run_tiled(x, run, 4, tile, overlap, batch, on_tiles=lambda d, t: progress.append((d, t)))
    up = TiledUpscaler(runner.model, 4, tile=tile, overlap=overlap, batch=batch, precision="fp32", engine="torch")
    up._runners[False] = runner  # the same runner: only the tiling and blending differ
    ref = up(torch.from_numpy(x)).numpy()
    assert out.shape == (3, 4 * h, 4 * w)
    np.testing.assert_array_equal(np.clip(out, 0, 1), ref)
    tiles = len(plan_tiles(h, w, tile, overlap)) if tile and max(h, w) > tile else 1
    assert progress[0] == (0, tiles) and progress[-1] == (tiles, tiles)
    assert sum(s[0] for s in calls) == tiles and max(s[0] for s in calls) <= batch


def test_windows_sum_to_one_across_the_overlap_band() -> None:
    h, w, s, overlap = 40, 50, 2, 6
    total = np.zeros((h * s, w * s), dtype=np.float32)
    for r in plan_tiles(h, w, 16, overlap):
        total[r.y0 * s:r.y1 * s, r.x0 * s:r.x1 * s] += window(r, h, w, s, overlap)
    assert total.min() > 0.99  # every output pixel gets a full weight
    assert list(ramp(6, 2, True, True)) == pytest.approx([1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3])
    assert list(ramp(4, 2, False, False)) == [1, 1, 1, 1]


@pytest.mark.parametrize(("h", "w", "tile", "overlap", "scale", "split"),
                         [(37, 45, 16, 4, 4, False), (300, 70, 64, 16, 4, False), (130, 129, 40, 8, 3, True),
                          (9, 200, 8, 3, 2, True)])
def test_banded_weights_divide_exactly_as_one_weight_array(
    h: int, w: int, tile: int, overlap: int, scale: int, split: bool
) -> None:
    # The weights are summed a band of rows at a time instead of in one whole-output array: the
    # result must be bit-identical, also for tiles split after an out-of-memory (not a product grid).
    regions = plan_tiles(h, w, tile, overlap)
    if split:
        split_regions = []
        for i, r in enumerate(regions):
            if i % 2 == 0:
                split_regions.append(r)
                continue
            for sub in plan_tiles(r.y1 - r.y0, r.x1 - r.x0, tile // 2, overlap):
                split_regions.append(Region(sub.y0 + r.y0, sub.y1 + r.y0, sub.x0 + r.x0, sub.x1 + r.x0, 0, 0, 0, 0))
        assert len(split_regions) > len(regions)
        regions = split_regions
    acc = np.random.default_rng(h + w).random((3, h * scale, w * scale), dtype=np.float32) + np.float32(0.5)
    weight = np.zeros((1, h * scale, w * scale), dtype=np.float32)
    for r in regions:
        weight[:, r.y0 * scale:r.y1 * scale, r.x0 * scale:r.x1 * scale] += window(r, h, w, scale, overlap)
    got = acc.copy()
    divide_by_weights(got, regions, h, w, scale, overlap)
    assert np.array_equal(got, acc / weight)


def test_eval_overlap_stays_below_half_the_tile() -> None:
    assert [eval_overlap(t) for t in (0, 8, 33, 34, 256)] == [0, 3, 16, 16, 16]


def test_spsr_lite_never_imports_torch() -> None:
    code = ("import sys, spsr.lite.tiles, spsr.lite.image, spsr.lite.runners, spsr.lite.warm, "
            "spsr.lite.upscaler, spsr.infer.files, spsr.infer.batch, spsr.infer.shards; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
