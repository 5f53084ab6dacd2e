"""Throughput of the full-size SPSR-G on a GPU: training iterations/s and upscale megapixels/s.

Training: one iteration is exactly what ``spsr train --variant g`` runs (the GAN stage's
``train_step``: G forward; pixel, VGG19 conv5_4 perceptual, gradient pixel, branch and the RaGAN
terms of D and D_GM; the G step, the D step, the D_GM step) at batch 16 of 32×32 LR / 128×128 HR
crops, SPSR-G nf 64 / nb 23, VGG-128 discriminators, VGG19 with random weights (the speed does
not depend on the weights). cuDNN autotuning is on, as the engine sets it on CUDA.

Upscaling: ``TiledUpscaler`` on a 512×512 input → 2048×2048 output, whole image (``--tile 0``),
plus the command line's defaults (``--tile 256 --batch 4``) in bf16 + channels-last.

Each is measured in fp32 and bf16 autocast, with and without channels-last; a configuration that
fails (e.g. out of memory) is recorded with its error and the others go on. Peak memory is
``torch.cuda.max_memory_allocated`` of that configuration.

    python tests/benchmarks/bench_gpu.py                     # on the GPU (about a minute on an H200)
    python tests/benchmarks/bench_gpu.py --dry-run           # CPU, tiny sizes: tests the script
    python tests/benchmarks/bench_gpu.py --json bench.json --train-iters 20
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

CONFIGS = {
    "fp32": ("off", False),
    "fp32_cl": ("off", True),
    "bf16": ("bf16", False),
    "bf16_cl": ("bf16", True),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def train_speed(name: str, device: torch.device, size: dict[str, int], iters: int, warmup: int) -> dict[str, Any]:
    """Iterations/s of the SPSR-G GAN step in one configuration."""
    from spsr.train.config import apply_overrides, validate
    from spsr.train.distributed import DistContext
    from spsr.train.runtime import Runtime, resolve_amp
    from spsr.train.stages.gan import GANStage
    from spsr.train.variants import preset

    amp, channels_last = CONFIGS[name]
    cfg = preset("g")
    apply_overrides(cfg, {"loss.perceptual_net": "vgg_random", "data.batch_size": size["batch"],
                          "run.device": str(device), "run.amp": amp,
                          "run.channels_last": "on" if channels_last else "off",
                          "model.nf": size["nf"], "model.nb": size["nb"], "model.gc": size["gc"],
                          "d.nf": size["d_nf"], "d.hidden": size["d_hidden"],
                          "loss.perceptual_layer": size["vgg_layer"]})
    validate(cfg)
    amp_dtype, scaler = resolve_amp(amp, device)
    lr, hr = size["lr"], size["lr"] * 4
    rt = Runtime(cfg=cfg, dist=DistContext(device=device), amp_dtype=amp_dtype, use_scaler=scaler,
                 channels_last=channels_last, data_shapes={"lr": (3, lr, lr), "hr": (3, hr, hr)})
    torch.manual_seed(0)
    stage = GANStage(cfg, rt)
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(2):
        hr_batch = torch.rand(size["batch"], 3, hr, hr, generator=g)
        batches.append({"hr": hr_batch, "lr": torch.nn.functional.avg_pool2d(hr_batch, 4)})
    _reset_memory(device)
    values: dict[str, float] = {}
    for i in range(warmup):
        rt.iteration = i + 1
        values = stage.train_step(rt.to_device(batches[i % 2]))
    _sync(device)
    t0 = time.perf_counter()
    for i in range(iters):
        rt.iteration = warmup + i + 1
        values = stage.train_step(rt.to_device(batches[i % 2]))
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"config": name, "it_per_s": iters / seconds, "s_per_it": seconds / iters,
            "samples_per_s": iters * size["batch"] / seconds, "peak_mib": _peak_mib(device),
            "g_total": values.get("g/total"), "iters": iters}


def upscale_speed(name: str, device: torch.device, lr: int, spec_size: dict[str, int], repeats: int,
                  tile: int = 0, batch: int = 4, overlap: int = 16) -> dict[str, Any]:
    """Output megapixels/s of the upscaler on an ``lr``×``lr`` input in one configuration."""
    from spsr.archs import ArchSpec, build_model
    from spsr.infer import TiledUpscaler

    amp, channels_last = CONFIGS[name]
    torch.manual_seed(0)
    model = build_model(ArchSpec("spsr", 4, nf=spec_size["nf"], nb=spec_size["nb"], gc=spec_size["gc"]))
    precision = "fp32" if amp == "off" else amp
    up = TiledUpscaler(model.eval(), 4, tile=tile, overlap=overlap if tile else 0, batch=batch,
                       device=device, precision=precision, channels_last=channels_last)
    x = torch.rand(3, lr, lr, generator=torch.Generator().manual_seed(2))
    _reset_memory(device)
    up(x)  # warm-up (cuDNN, allocator)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = up(x)  # returns on the CPU: the copy back is part of the cost, as in `spsr upscale`
        best = min(best, time.perf_counter() - t0)
    megapixels = out.shape[-1] * out.shape[-2] / 1e6
    label = name if not tile else f"{name} tile {tile} batch {batch}"
    return {"config": label, "mp_per_s": megapixels / best, "seconds": best,
            "output": list(out.shape[-2:]), "peak_mib": _peak_mib(device), "final_tile": up.tile}


def _guarded(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    name = args[0]
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - record it (OOM, missing kernel ...) and go on
        return {"config": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    finally:
        _reset_memory(args[1])


FULL = {"nf": 64, "nb": 23, "gc": 32, "d_nf": 64, "d_hidden": 100, "batch": 16, "lr": 32,
        "vgg_layer": "conv5_4"}
TINY = {"nf": 8, "nb": 1, "gc": 4, "d_nf": 4, "d_hidden": 8, "batch": 2, "lr": 8,
        "vgg_layer": "conv2_2"}


def run(device: torch.device, dry_run: bool, configs: list[str], train_iters: int, warmup: int,
        upscale_lr: int, repeats: int) -> dict[str, Any]:
    size = TINY if dry_run else FULL
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    report: dict[str, Any] = {"device": str(device), "dry_run": dry_run, "size": size,
                              "upscale_input": [upscale_lr, upscale_lr], "train": [], "upscale": []}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    for name in configs:
        r = _guarded(train_speed, name, device, size, train_iters, warmup)
        report["train"].append(r)
        print(_line("train", r), flush=True)
    for name in configs:
        r = _guarded(upscale_speed, name, device, upscale_lr, size, repeats)
        report["upscale"].append(r)
        print(_line("upscale", r), flush=True)
    if "bf16_cl" in configs:  # the command line's defaults
        tile, overlap = (8, 2) if dry_run else (256, 16)
        r = _guarded(upscale_speed, "bf16_cl", device, upscale_lr, size, repeats, tile=tile, batch=4,
                     overlap=overlap)
        report["upscale"].append(r)
        print(_line("upscale", r), flush=True)
    return report


def _line(kind: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{kind:7s} {r['config']:24s} FAILED {r['error']}"
    peak = f", peak {r['peak_mib']:.0f} MiB" if r.get("peak_mib") is not None else ""
    if kind == "train":
        return f"{kind:7s} {r['config']:24s} {r['it_per_s']:8.3f} it/s ({r['samples_per_s']:.1f} samples/s{peak})"
    return f"{kind:7s} {r['config']:24s} {r['mp_per_s']:8.3f} MP/s ({r['seconds']:.3f} s per image{peak})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny model and sizes")
    ap.add_argument("--device", default="", help="default: cuda (cpu with --dry-run)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    ap.add_argument("--train-iters", type=int, default=0, help="timed iterations (default 10; 1 dry)")
    ap.add_argument("--warmup", type=int, default=0, help="untimed iterations first (default 3; 1 dry)")
    ap.add_argument("--upscale-size", type=int, default=0, help="LR input side (default 512; 16 dry)")
    ap.add_argument("--repeats", type=int, default=0, help="timed upscales, best kept (default 3; 1 dry)")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    dry = args.dry_run
    device = torch.device(args.device or ("cpu" if dry else "cuda:0"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU: use --dry-run to test this script on the CPU", file=sys.stderr)
        return 2
    configs = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        print(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    report = run(device, dry, configs, args.train_iters or (1 if dry else 10), args.warmup or (1 if dry else 3),
                 args.upscale_size or (16 if dry else 512), args.repeats or (1 if dry else 3))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    failed = [r for r in report["train"] + report["upscale"] if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
