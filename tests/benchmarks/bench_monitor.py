"""Benchmark what the run monitors add to training (``spsr.train.monitor``).

1. the validation pictures of a full-size SPSR-G generator (nf 64, nb 23, ×4): three 48×48 LR
   crops through the generator plus the gradient-map panels, in seconds, beside the validation
   it accompanies (``evaluate_generator`` on the same three images at 128×128 LR);
2. a TensorBoard ``train`` record (the scalars of an SPSR-G record: 9 tags) in microseconds, and
   writing one set of pictures;
3. the resume of a run: cutting its event file (``--records`` train records and one picture set
   per 10 records) after the resumed iteration, in the middle of the file.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python tests/benchmarks/bench_monitor.py``. Prints numbers only.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from spsr.archs import ArchSpec, build_model
from spsr.train.monitor import TensorBoardMonitor
from spsr.train.validate import ValImage, evaluate_generator, validation_pictures

RECORD = {"kind": "train", "g/pixel": 0.01, "g/perceptual": 1.2, "g/gan": 0.005,
          "g/grad_pixel": 0.02, "g/grad_gan": 0.004, "g/branch": 0.3, "d/loss": 0.69,
          "lr/G": 1e-4, "lr/D": 1e-4, "it_per_s": 0.5, "skipped": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        hr = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
        lr = hr.reshape(128, 4, 128, 4, 3).mean(axis=(1, 3)).round().astype(np.uint8)
        images.append(ValImage(f"img{i}", hr, lr))
    torch.manual_seed(0)
    model = build_model(ArchSpec("spsr", 4))  # nf 64, nb 23
    t0 = time.perf_counter()
    pictures = validation_pictures(model, images, 4)
    shown = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate_generator(model, images, 4)
    scored = time.perf_counter() - t0
    print(f"1. validation pictures (3 crops of 48², SPSR-G full size): {shown:.2f} s; "
          f"the validation itself (3 images of 128² LR): {scored:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        monitor = TensorBoardMonitor()
        monitor.open(run, 0, False, {})
        records = pictured = 0.0
        for it in range(1, args.records + 1):
            t0 = time.perf_counter()
            monitor.record({**RECORD, "iteration": it, "time": time.time()})
            t1 = time.perf_counter()
            if it % 10 == 0:  # as a run validating every 10 log records
                monitor.images(it, pictures)
            records, pictured = records + t1 - t0, pictured + time.perf_counter() - t1
        monitor.close()
        print(f"2. TensorBoard train record (9 scalars): {records / args.records * 1e6:.0f} µs; "
              f"one picture set ({len(pictures)} PNGs): {pictured / (args.records // 10):.2f} s")
        size = sum(p.stat().st_size for p in run.glob("events*"))
        t0 = time.perf_counter()
        again = TensorBoardMonitor()
        again.open(run, args.records // 2, True, {})
        again.close()
        print(f"3. resume at the middle of {args.records} records + {args.records // 10} picture sets "
              f"({size / 1e6:.1f} MB): {time.perf_counter() - t0:.2f} s")

if __name__ == "__main__":
    main()
