"""A real CUDA out-of-memory in the tiled upscaler, and its recovery (a step of run_checks.py).

On the GPU, with the full-size SPSR-G (nf 64, nb 23, ×4, random weights) in fp32 on a 256×256
crop of a real photo:

1. the whole image is upscaled untiled (the reference), and the peak memory of that run and of a
   run with 64-pixel tiles are measured;
2. ``torch.cuda.set_per_process_memory_fraction`` then caps this process between the two (their
   geometric mean, above the model's weights), and the image is upscaled again with a tile as
   large as the image and a batch of 4: the first forward passes run out of memory for real,
   the upscaler halves batch and tile (emptying the cache) and finishes;
3. the result must match the untiled reference: every pixel within one 8-bit level and PSNR
   ≥ 45 dB (the tiled upscaler blends tiles to within a fraction of a level of whole-image
   inference), with at least one out-of-memory seen and a smaller final tile.

``--dry-run`` runs the same steps on the CPU with a tiny model, the memory cap simulated (inputs
above a size raise ``torch.cuda.OutOfMemoryError``), so the script itself is tested.

    python tests/gpu/oom_check.py [--dry-run] [--json result.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from spsr.archs import ArchSpec, build_model
from spsr.infer import TiledUpscaler

LEVEL = 1 / 255


def _photo(size: int) -> torch.Tensor:
    """A ``size``×``size`` crop of scikit-image's astronaut photo (public domain), (3, H, W)."""
    from skimage import data

    from spsr.data.image_io import to_tensor

    img = data.astronaut()
    return to_tensor(img[:size, 100:100 + size].copy())


def _count_ooms(up: TiledUpscaler, simulate_above: int = 0) -> dict[str, int]:
    """Wrap ``up._run`` to count the out-of-memory errors it raises (or, with ``simulate_above``,
    raise one for every input with more elements, as a capped GPU would)."""
    real = up._run
    seen = {"ooms": 0, "forwards": 0}

    def counted(x: torch.Tensor) -> torch.Tensor:
        seen["forwards"] += 1
        if simulate_above and x.numel() > simulate_above:
            seen["ooms"] += 1
            raise torch.cuda.OutOfMemoryError("simulated: input above the dry run's memory cap")
        try:
            return real(x)
        except torch.cuda.OutOfMemoryError:
            seen["ooms"] += 1
            raise

    up._run = counted  # type: ignore[method-assign]
    return seen


def _compare(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    diff = (out - ref).abs()
    mse = float((diff ** 2).mean())
    return {"max_diff_levels": float(diff.max()) / LEVEL, "mean_diff_levels": float(diff.mean()) / LEVEL,
            "psnr_db": float("inf") if mse == 0 else 10 * math.log10(1 / mse)}


def run(dry_run: bool) -> dict[str, Any]:
    torch.manual_seed(0)
    if dry_run:
        device, size, spec = torch.device("cpu"), 40, ArchSpec("spsr", 4, nf=8, nb=2, gc=4)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("needs a CUDA GPU (or --dry-run)")
        device, size, spec = torch.device("cuda:0"), 256, ArchSpec("spsr", 4)
    model = build_model(spec).eval()
    x = _photo(size)
    result: dict[str, Any] = {"device": str(device), "input": [size, size], "model": spec.describe(),
                              "simulated": dry_run}

    whole = TiledUpscaler(model, 4, tile=0, device=device, precision="fp32")
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    ref = whole(x)
    result["whole_seconds"] = time.perf_counter() - t0
    small = TiledUpscaler(model, 4, tile=64 if not dry_run else 16, overlap=16 if not dry_run else 4,
                          batch=1, device=device, precision="fp32")
    if device.type == "cuda":
        whole_peak = torch.cuda.max_memory_allocated(device) - base
        torch.cuda.reset_peak_memory_stats(device)
        small_ref = small(x)
        small_peak = torch.cuda.max_memory_allocated(device) - base
        cap = base + math.sqrt(whole_peak * small_peak)
        total = torch.cuda.get_device_properties(device).total_memory
        result.update(weights_mib=base / 2**20, whole_peak_mib=whole_peak / 2**20,
                      tile64_peak_mib=small_peak / 2**20, cap_mib=cap / 2**20)
        if whole_peak < 2 * small_peak:
            raise RuntimeError(f"untiled peak {whole_peak / 2**20:.0f} MiB is not well above the "
                               f"64-pixel tiles' {small_peak / 2**20:.0f} MiB: no room for a cap")
        del whole
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(cap / total, device)
    else:
        small_ref = small(x)
    result["small_tiles_vs_whole"] = _compare(small_ref, ref)

    up = TiledUpscaler(model, 4, tile=size, overlap=16 if not dry_run else 4, batch=4,
                       device=device, precision="fp32")
    seen = _count_ooms(up, simulate_above=3 * 24 * 24 if dry_run else 0)
    t0 = time.perf_counter()
    try:
        out = up(x)
    finally:
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    result["capped_seconds"] = time.perf_counter() - t0
    if device.type == "cuda":
        result["capped_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
    result.update(seen, final_tile=up.tile, final_batch=up.batch, start_tile=size, start_batch=4)
    result["capped_vs_whole"] = cmp = _compare(out, ref)
    problems = []
    if seen["ooms"] < 1:
        problems.append("no out-of-memory happened under the cap")
    if up.tile >= size:
        problems.append("the tile was not reduced")
    if cmp["max_diff_levels"] > 1.0 or cmp["psnr_db"] < 45:
        problems.append(f"the recovered output differs from the untiled one ({cmp})")
    result["problems"] = problems
    result["passed"] = not problems
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny model, simulated memory cap")
    ap.add_argument("--json", type=Path, help="write the result here")
    args = ap.parse_args(argv)
    result = run(args.dry_run)
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
