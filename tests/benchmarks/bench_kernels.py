"""spsr's torch-engine CPU kernels against PyTorch's own forward, on this CPU.

Runs, in one process and alternating, the model's plain forward (PyTorch's oneDNN convolutions)
and the torch engine's accelerated copy of it (spsr's fused kernels, with the Winograd path
forced on and forced off), fp32, and prints each round, the medians and the ratios, with the
CPU's model name and vendor. The Winograd path is on by default only on the vendors in
``spsr.engines.torch_fast.winograd.WINOGRAD_VENDORS``; this script is how that rule was measured.

    python tests/benchmarks/bench_kernels.py                  # the built-in model, 128², 5 rounds
    python tests/benchmarks/bench_kernels.py --weights spsr.pth --size 128 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

from spsr import cpu
from spsr.checkpoints import load_model
from spsr.engines.torch_fast import accelerate, plain_forward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="default", help="model to run (default: the built-in one)")
    ap.add_argument("--size", type=int, default=128, help="input side in pixels")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per variant")
    ap.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: its own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.weights).model.eval()
    fast = accelerate(copy.deepcopy(model))
    x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))

    def plain() -> None:
        with plain_forward():
            model(x)

    def engine(winograd: str) -> None:
        os.environ["SPSR_WINOGRAD"] = winograd
        fast(x)

    variants = {"plain PyTorch": plain, "torch engine, Winograd on": lambda: engine("1"),
                "torch engine, Winograd off": lambda: engine("0")}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for run in variants.values():  # warm-up
            run()
        for _ in range(args.rounds):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    print(f"CPU: {cpu.cpu_model_name()} ({cpu.cpu_vendor() or 'vendor unknown'}), "
          f"flags {' '.join(cpu.kernel_flags())}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"model {args.weights}, {args.size}² input, fp32, {args.rounds} alternating rounds")
    base = statistics.median(times["plain PyTorch"])
    for name, ts in times.items():
        med = statistics.median(ts)
        rounds = " / ".join(f"{t:.2f}" for t in ts)
        print(f"{name:28s} {rounds} s  median {med:.2f} s  ({base / med:.2f}x plain)")


if __name__ == "__main__":
    main()
