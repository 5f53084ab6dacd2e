"""Training speed of the full-size SPSR-G: iterations/s and peak memory, fp32 eager vs fast paths.

One iteration is exactly what ``spsr train --variant g`` runs (the GAN stage's ``train_step``):
G forward, G loss (pixel, VGG19 conv5_4 perceptual, gradient pixel, branch, RaGAN of D and D_GM),
G step, D step, D_GM step. Full size: SPSR-G nf 64 / nb 23, VGG-128 discriminators, VGG19 with
random weights (the speed does not depend on the weights), batch 2 of 32×32 LR / 128×128 HR.

Each configuration runs in its own process, so peak memory is per configuration (CPU: peak RSS of
the process, torch included; CUDA: peak allocated). Usage::

    python tests/benchmarks/bench_train.py                  # fp32 eager vs channels_last vs bf16 (+ both)
    python tests/benchmarks/bench_train.py --iters 5 --threads 2 --configs fp32,bf16_cl
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = {
    "fp32": {"run.amp": "off", "run.channels_last": "off"},
    "fp32_cl": {"run.amp": "off", "run.channels_last": "on"},
    "bf16": {"run.amp": "bf16", "run.channels_last": "off"},
    "bf16_cl": {"run.amp": "bf16", "run.channels_last": "on"},
}


def run_one(name: str, iters: int, warmup: int, batch: int, device: str) -> dict[str, float]:
    import torch

    from spsr.train.config import apply_overrides, validate
    from spsr.train.distributed import DistContext, resolve_device
    from spsr.train.runtime import Runtime, resolve_amp, resolve_channels_last
    from spsr.train.stages.gan import GANStage
    from spsr.train.variants import preset

    cfg = preset("g")
    apply_overrides(cfg, {"loss.perceptual_net": "vgg_random", "data.batch_size": batch,
                          "run.device": device, **CONFIGS[name]})
    validate(cfg)
    dev = resolve_device(device)
    amp_dtype, scaler = resolve_amp(cfg.run.amp, dev)
    rt = Runtime(cfg=cfg, dist=DistContext(device=dev), amp_dtype=amp_dtype, use_scaler=scaler,
                 channels_last=resolve_channels_last(cfg.run.channels_last, amp_dtype, dev),
                 data_shapes={"lr": (3, 32, 32), "hr": (3, 128, 128)})
    torch.manual_seed(0)
    stage = GANStage(cfg, rt)
    hr = torch.rand(batch, 3, 128, 128)
    batch_data = rt.to_device({"hr": hr, "lr": torch.nn.functional.avg_pool2d(hr, 4)})
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for i in range(warmup + iters):
        rt.iteration = i + 1
        t0 = time.perf_counter()
        values = stage.train_step(batch_data)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak_mb = (torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    mean = sum(times) / len(times)
    return {"config": name, "s_per_it": mean, "it_per_s": 1.0 / mean, "peak_mb": peak_mb,
            "g_total": values["g/total"], "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per configuration")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(run_one(args.child, args.iters, args.warmup, args.batch, args.device)))
        return

    results = []
    for name in args.configs.split(","):
        cmd = [sys.executable, __file__, "--child", name, "--iters", str(args.iters), "--warmup",
               str(args.warmup), "--batch", str(args.batch), "--threads", str(args.threads),
               "--device", args.device]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ))
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{name:8s}  {r['s_per_it']:7.2f} s/it  {r['it_per_s']:.3f} it/s  peak {r['peak_mb']:.0f} MB"
              f"  (threads {r['threads']}, G loss {r['g_total']:.4f})", flush=True)
    base = next((r for r in results if r["config"] == "fp32"), None)
    if base:
        for r in results:
            if r is not base:
                print(f"speed-up of {r['config']} over fp32 eager: {base['s_per_it'] / r['s_per_it']:.2f}x")


if __name__ == "__main__":
    main()
