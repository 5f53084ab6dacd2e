"""Upscale throughput and peak memory of the full-size SPSR-G (nf 64, nb 23, ×4) on this machine.

Prints megapixels/s (output) for fp32 eager vs the fast path (bf16 autocast + channels_last where
the CPU has native bf16) on 128×128 and 512×512 inputs, and peak resident memory of a tiled run
(--tile 128) on a 1024×1024 input vs a 256×256 input (each measured in a fresh subprocess).

    python tests/benchmarks/bench_upscale.py            # all
    python tests/benchmarks/bench_upscale.py --quick    # 128×128 only, one repeat
    python tests/benchmarks/bench_upscale.py --sizes 512 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

from spsr.archs import SPSRNet
from spsr.infer import TiledUpscaler


def throughput(size: int, precision: str, channels_last: bool, repeats: int) -> float:
    torch.manual_seed(0)
    model = SPSRNet().eval()
    up = TiledUpscaler(model, 4, tile=0, precision=precision, channels_last=channels_last)
    x = torch.rand(3, size, size)
    up(x[:, :32, :32])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        up(x)
        best = min(best, time.perf_counter() - t)
    return (size * 4) ** 2 / 1e6 / best


def peak_memory_child(size: int, tile: int) -> None:
    import resource

    torch.manual_seed(0)
    model = SPSRNet().eval()
    up = TiledUpscaler(model, 4, tile=tile, overlap=16, batch=1, precision="auto")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    up(torch.rand(3, size, size))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mib": peak / 1024, "model_loaded_mib": base / 1024}))


def peak_memory(size: int, tile: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", str(size), str(tile)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default="128,512", help="input sizes for the throughput part")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-memory", action="store_true", help="skip the tiled peak-memory part")
    ap.add_argument("--child", nargs=2, type=int)
    args = ap.parse_args()
    if args.child:
        peak_memory_child(*args.child)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    sizes = [128] if args.quick else [int(v) for v in args.sizes.split(",") if v]
    repeats = 1 if args.quick else args.repeats
    for size in sizes:
        eager = throughput(size, "fp32", False, repeats)
        fast = throughput(size, "auto", True, repeats)
        print(f"{size}x{size} -> {size * 4}x{size * 4}: fp32 eager {eager:.3f} MP/s, "
              f"fast path (auto precision + channels_last) {fast:.3f} MP/s, speed-up {fast / eager:.2f}x")
    if not args.quick and not args.no_memory:
        small = peak_memory(256, 128)
        large = peak_memory(1024, 128)
        print(f"peak RSS with --tile 128: 256x256 input {small['peak_mib']:.0f} MiB, "
              f"1024x1024 input {large['peak_mib']:.0f} MiB, ratio {large['peak_mib'] / small['peak_mib']:.2f}")


if __name__ == "__main__":
    main()
