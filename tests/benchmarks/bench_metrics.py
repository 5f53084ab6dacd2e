"""Seconds per 512x512 image for every ``spsr eval`` metric.

    .venv/bin/python tests/benchmarks/bench_metrics.py [--repeat 3] [--ma-model PATH] [--lpips-backbone PATH] [--fetch]

The image is skimage's astronaut (512x512) against a noisy copy. Without the authors' Ma
``model.mat`` the forests are a synthetic model of the real one's size (3 forests x 2000 trees x
577 nodes: the authors' ``train_RF_regression.m`` calls ``regRF_train(X, Y, 2000)`` on 180 x 8 =
1440 images, and randomForest's regression default ``nodesize = 5`` gives ``nrnodes = 2 *
floor(1440 / 5) + 1 = 577``; random splits around the image's own features, so paths are as deep
as real ones); the
feature extraction, which dominates, is the real code either way (the script prints the synthetic
trees' depths). Nothing is downloaded unless ``--fetch`` is given (then missing files are fetched
into the cache as ``spsr eval`` would). Without AlexNet weights LPIPS runs
on a random backbone (same cost). The script says which it used. Timings are the best of
``--repeat`` runs, as wall-clock and as CPU seconds of this process (the CPU may be shared with other
work: then the wall time grows with the load average, printed too, while the CPU time does not).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
from skimage import data as skdata

from spsr.errors import MissingWeightsError
from spsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim, load_ma_model
from spsr.metrics.conventions import shave, y_levels
from spsr.metrics.forest import RegressionForest
from spsr.metrics.lpips_metric import LPIPSMetric
from spsr.metrics.nrqm import FEATURE_SIZES, MaModel
from spsr.metrics.nrqm_features import nrqm_features
from spsr.metrics.pi import perceptual_scores


def best_of(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU (process) seconds over ``repeat`` runs."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def synthetic_forest(
    centre: np.ndarray, rng: np.random.Generator, n_trees: int = 2000, n_nodes: int = 577
) -> RegressionForest:
    """A random forest in randomForest's layout: every tree grows by splitting a random leaf until
    it has ``n_nodes`` nodes (all trees at once); splits on random features near ``centre``."""
    l_dau = np.zeros((n_nodes, n_trees))
    r_dau = np.zeros((n_nodes, n_trees))
    mbest = np.zeros((n_nodes, n_trees))
    upper = np.zeros((n_nodes, n_trees))
    avnode = rng.uniform(0, 10, (n_nodes, n_trees))
    trees = np.arange(n_trees)
    leaves = np.zeros((n_trees, (n_nodes + 1) // 2), dtype=np.int64)  # 0-based leaf node ids
    for split in range((n_nodes - 1) // 2):
        pick = rng.integers(0, split + 1, n_trees)  # one of the split + 1 current leaves
        node = leaves[trees, pick]
        left = 2 * split + 1
        feature = rng.integers(0, len(centre), n_trees)
        l_dau[node, trees], r_dau[node, trees] = left + 1, left + 2
        mbest[node, trees] = feature + 1
        upper[node, trees] = centre[feature] * (1 + 0.05 * rng.standard_normal(n_trees))
        leaves[trees, pick] = left
        leaves[trees, split + 1] = left + 1
    rf = SimpleNamespace(lDau=l_dau, rDau=r_dau, mbest=mbest, upper=upper, avnode=avnode)
    return RegressionForest.from_matlab(rf)


def tree_depths(forest: RegressionForest) -> np.ndarray:
    """Depth of the deepest leaf of every tree (root = 0), all trees at once."""
    depth = np.full(forest.left.shape, -1, dtype=np.int64)
    depth[:, 0] = 0
    for d in range(forest.left.shape[1]):
        at = (depth == d) & (forest.left >= 0)
        if not at.any():
            break
        t, n = np.nonzero(at)
        depth[t, forest.left[t, n]] = d + 1
        depth[t, forest.right[t, n]] = d + 1
    return depth.max(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ma-model", default=None)
    parser.add_argument("--lpips-backbone", default=None)
    parser.add_argument("--fetch", action="store_true", help="fetch missing model files")
    args = parser.parse_args()
    from spsr.weights import fetch_settings

    with fetch_settings(offline=not args.fetch):
        run(args)


def run(args: argparse.Namespace) -> None:
    hr = skdata.astronaut()
    rng = np.random.default_rng(0)
    sr = np.clip(hr.astype(int) + rng.integers(-12, 13, hr.shape), 0, 255).astype(np.uint8)
    y = shave(y_levels(sr), 4)
    features = nrqm_features(y)

    try:
        model = load_ma_model(args.ma_model)
        ma_note = "authors' model.mat"
    except MissingWeightsError:
        t0 = time.perf_counter()
        forests = tuple(synthetic_forest(f, rng) for f in features)
        model = MaModel(forests=forests, linear=np.array([0.5, 0.3, 0.4, 0.3]))  # type: ignore[arg-type]
        depths = np.concatenate([tree_depths(f) for f in forests])
        ma_note = (f"SYNTHETIC model of the real size (3 x 2000 trees x 577 nodes, tree depth "
                   f"mean {depths.mean():.1f}, max {depths.max()}; built in "
                   f"{time.perf_counter() - t0:.1f} s): model.mat not found")
    assert tuple(len(f) for f in features) == FEATURE_SIZES
    try:
        lpips_metric = LPIPSMetric(args.lpips_backbone)
        lpips_note = "AlexNet ImageNet weights"
    except MissingWeightsError:
        lpips_metric = LPIPSMetric(random_backbone=True)
        lpips_note = "RANDOM AlexNet backbone (same cost): ImageNet weights not found"

    rows = [
        ("psnr", lambda: calculate_psnr(sr, hr, 4), ""),
        ("ssim", lambda: calculate_ssim(sr, hr, 4), ""),
        ("lpips", lambda: lpips_metric(sr, hr), lpips_note),
        ("niqe", lambda: calculate_niqe(sr, 4), ""),
        ("ma: features", lambda: nrqm_features(y), ""),
        ("ma: forests + linear", lambda: model.predict(*features), ma_note),
        ("niqe + ma + pi", lambda: perceptual_scores(sr, 4, model), "one shared Y image"),
    ]
    print(f"512x512 image, best of {args.repeat}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (wall time grows with the load; CPU time is this process's)")
    print(f"  {'metric':<22} {'wall s':>7} {'CPU s':>7}")
    for name, fn, note in rows:
        fn()  # warm caches (tables, lazily built kernels)
        wall, cpu = best_of(fn, args.repeat)
        print(f"  {name:<22} {wall:7.3f} {cpu:7.3f}   {note}")


if __name__ == "__main__":
    main()
