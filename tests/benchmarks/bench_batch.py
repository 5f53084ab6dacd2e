"""Tiles per forward pass on the CPU: batches of 4 against one tile at a time.

The built-in model upscales one image (default: the astronaut photo resized to 512², ×4) through
128² tiles with 16 pixels of overlap, by PyTorch (spsr's torch engine, fp32) and by OpenVINO f32
(the model converted once beforehand), each run a fresh process, in alternating order. Prints the
CPU, each run's upscaling seconds (after a one-tile warm-up) and its peak resident memory
(``ru_maxrss``). This is the measurement behind ``spsr.lite.tiles.default_batch`` (1 on the CPU).

Run: ``python tests/benchmarks/bench_batch.py [--size 512] [--rounds 1] [--engines torch,openvino]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: One upscale in a fresh process: prints seconds and peak RSS.
ONE = """
import resource, sys, time
from spsr.data.image_io import read_image, to_tensor
from spsr.infer import TiledUpscaler, load_model
engine, batch = sys.argv[2], int(sys.argv[3])
up = TiledUpscaler(load_model("default").model, 4, tile=128, overlap=16, batch=batch, precision="fp32",
                   engine=engine)
x = to_tensor(read_image(sys.argv[1]).pixels)
up(x[:, :128, :128])  # warm-up: the engine prepared, one tile run
start = time.perf_counter()
up(x)
took = time.perf_counter() - start
print(f"RESULT {took:.1f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} {up.describe()}")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--engines", default="torch,openvino")
    args = ap.parse_args()

    from PIL import Image
    from skimage import data

    from spsr.cpu import cpu_model_name

    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    src = tmp / "in.png"
    Image.fromarray(data.astronaut()).resize((args.size, args.size), Image.BICUBIC).save(src)
    env = {**os.environ, "SPSR_CACHE": str(tmp / "cache")}
    env.pop("SPSR_ENGINE", None)
    print(f"CPU: {cpu_model_name()}; built-in model, {args.size}² → {args.size * 4}², 128² tiles, overlap 16")
    for _ in range(args.rounds):
        for engine in args.engines.split(","):
            for batch in (4, 1):
                done = subprocess.run([sys.executable, "-c", ONE, str(src), engine, str(batch)], env=env,
                                      capture_output=True, text=True, check=False)
                line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")), None)
                if line is None:
                    raise SystemExit(f"{engine} batch {batch} failed:\n{done.stderr[-2000:]}")
                _, seconds, peak, what = line.split(maxsplit=3)
                print(f"  {what:16s} batch {batch}: {seconds:>6s} s, peak RSS {peak:>5s} MiB")


if __name__ == "__main__":
    main()
