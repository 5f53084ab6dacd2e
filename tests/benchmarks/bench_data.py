"""Benchmark the data path: store write rate, loader read rate, and the training rate it feeds.

Measures, on ``../shared/datasets/train`` (or ``--data``):

1. ``write_store`` rate with 1 and 2 decoding workers (patches/s, MB/s of patch payload);
2. the ``PatchDataset`` read rate through a ``DataLoader`` with 2 workers (patches/s), with the
   training crop and flips/rot90;
3. one full-size SPSR-G generator training step (nf 64, nb 23, ×4, batch 2 of 32×32 LR,
   forward + backward + Adam step with the branch losses) on the same machine, and the ratio
   loader rate / training rate. The real SPSR-G step also runs VGG19 and two discriminators, so
   this generator-only step over-estimates the training rate: the ratio printed is a lower bound.

Run: ``.venv/bin/python tests/benchmarks/bench_data.py`` (``--help`` for options). Prints numbers only.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from spsr.data.dataset import PatchDataset
from spsr.data.sources import expand_sources
from spsr.data.store import StoreOptions, write_store

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "datasets" / "train"


def bench_write(
    images: list[Path], out: Path, options: StoreOptions, workers: int
) -> tuple[float, float, int]:
    """Returns (patches/s, payload MB/s, patches) of one ``write_store`` run."""
    start = time.perf_counter()
    summary = write_store(images, out, options, workers=workers, overwrite=True)
    seconds = time.perf_counter() - start
    payload = summary.patches * 3 * (options.patch**2 + options.lr_patch**2)
    return summary.patches / seconds, payload / seconds / 1e6, summary.patches


def bench_loader(store: Path, lr_crop: int, batch: int, workers: int, batches: int) -> float:
    """Patches/s through a shuffled DataLoader (after one warm-up pass over ``workers`` batches)."""
    loader = DataLoader(
        PatchDataset(store, lr_crop=lr_crop),
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    it = iter(loader)
    for _ in range(max(1, workers)):
        next(it)
    start = time.perf_counter()
    count = 0
    for _ in range(batches):
        try:
            b = next(it)
        except StopIteration:
            it = iter(loader)
            b = next(it)
        count += b["lr"].shape[0]
    return count / (time.perf_counter() - start)


def bench_train_step(device: str, steps: int) -> float | None:
    """Samples/s of the full-size SPSR-G generator training step, or None when unavailable."""
    try:
        from spsr.archs import SPSRNet
        from spsr.ops import gradient_map
    except ImportError:
        return None
    torch.manual_seed(0)
    model = SPSRNet(in_nc=3, out_nc=3, nf=64, nb=23, gc=32, scale=4).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = torch.rand(2, 3, 32, 32, device=device)
    hr = torch.rand(2, 3, 128, 128, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(lr)
        hr_grad = gradient_map(hr)
        loss = (
            (out.sr - hr).abs().mean()
            + (out.grad - hr_grad).abs().mean()
            + (gradient_map(out.sr) - hr_grad).abs().mean()
        )
        loss.backward()
        opt.step()

    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="images to prepare")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--step", type=int, default=None)
    parser.add_argument("--compression", default="none", choices=["none", "lzf", "gzip"])
    parser.add_argument("--write-workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--loader-workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr-crop", type=int, default=32)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=2, help="0 skips the training step")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the stores")
    args = parser.parse_args()

    if not args.data.exists():
        raise SystemExit(f"{args.data}: not found (pass --data)")
    images = expand_sources([args.data]).images
    options = StoreOptions.make(
        args.scale, args.patch, args.step, compression=args.compression, limit=args.limit
    )
    print(
        f"data: {args.data} ({len(images)} images, limit {args.limit}), patch {options.patch}, "
        f"step {options.step}, compression {options.compression}, cpus {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        store = Path(tmp) / "bench.h5"
        for workers in (int(w) for w in args.write_workers.split(",")):
            rate, mbps, patches = bench_write(images, store, options, workers)
            size = store.stat().st_size / 1e6
            print(
                f"write  workers={workers}: {rate:8.0f} patches/s  {mbps:7.1f} MB/s  "
                f"({patches} patches, {size:.0f} MB on disk)"
            )
        read = bench_loader(store, args.lr_crop, args.batch, args.loader_workers, args.batches)
        print(
            f"loader workers={args.loader_workers}, batch {args.batch}, LR crop {args.lr_crop}: "
            f"{read:8.0f} patches/s"
        )
    if args.train_steps > 0:
        train = bench_train_step(args.device, args.train_steps)
        if train is None:
            print("train step: spsr.archs.SPSRNet not available; loader rate alone reported")
        else:
            print(
                f"SPSR-G generator step (nf 64, nb 23, batch 2 of 32x32 LR) on {args.device}: "
                f"{train:.3f} samples/s ({2 / train:.2f} s/step)"
            )
            print(f"loader / training rate: {read / train:.0f}x (goal >= 20x)")


if __name__ == "__main__":
    main()
