"""Where the full-size SPSR-G's CPU time goes, and how spsr compares with the official-style forward.

In one run, on this machine and with the threads in use:

1. the machine's limits: fp32 GEMM (4096²) and a 3×3 convolution 192→32 channels at 256², NCHW and
   channels-last;
2. the FLOPs of the full SPSR-G (nf 64, nb 23, ×4, random weights) for 128×128 → 512×512,
   counted with forward hooks over every convolution (on the meta device, so instantly);
3. network only: the plain "official-style" fp32 eager forward (NCHW, ``torch.cat`` per dense
   conv, separate LeakyReLU — spsr's ``SPSRNet`` with every fast path off, which is exactly the
   official network's op sequence and state-dict layout) against spsr's inference path
   (``TiledUpscaler`` as ``spsr upscale`` builds it), alternating, with the achieved GFLOP/s as
   a fraction of the GEMM and convolution rates;
4. whole process, each run a fresh subprocess: the official-style script (load ``.pth``, read
   PNG, forward, write PNG) against ``spsr upscale`` on the same weights and image;
5. the built-in default model on the bundled sample images, whole process, against the previous
   release's default (the same network with its fusion RRDB at HR resolution, direct
   convolutions: ``SPSR_WINOGRAD=0``), in output megapixels per second;
6. peak RSS of ``spsr upscale --tile 128`` on a 1024×1024 input vs a 256×256 one, with the
   built-in default model (the full-size SPSR-G would take ~20 minutes on the large one).

Which compute path ran (fp32 / bf16) and why is printed first. To emulate an AVX2+FMA CPU on a
newer one, limit every library's ISA::

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python tests/benchmarks/bench_speed.py --sizes 128 --pairs 3

Timings on a shared machine are noisy: compare ratios from alternating pairs, not single runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spsr.archs import SPSRNet, sr_of
from spsr.engines.torch_fast import plain_forward
from spsr.infer import TiledUpscaler
from spsr.infer.precision import precision_reason
from spsr.infer.tiled import resolve_precision

ISA_VARS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def gemm_rate(n: int = 4096, repeats: int = 3) -> float:
    """fp32 GFLOP/s of an ``n × n`` matrix product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / _best(lambda: a @ b, repeats) / 1e9


def copy_rate(mib: int = 256, repeats: int = 3) -> float:
    """GB/s of a large fp32 copy (read + write): the Winograd path's transforms and copies are
    bound by it, so a neighbour on a shared host slows spsr more than the official forward."""
    a = torch.rand(mib * 2**20 // 4)
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / _best(lambda: b.copy_(a), repeats) / 1e9


def conv_rate(channels_last: bool, cin: int = 192, cout: int = 32, size: int = 256, repeats: int = 3) -> float:
    """fp32 GFLOP/s of a 3×3 convolution ``cin → cout`` at ``size²``."""
    conv = nn.Conv2d(cin, cout, 3, padding=1).eval()
    x = torch.randn(1, cin, size, size)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        t = _best(lambda: conv(x), repeats)
    return 2 * cin * cout * 9 * size * size / t / 1e9


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds ×2 of every ``nn.Conv2d`` in one forward, from the shapes the hooks see."""
    total = 0

    def hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Conv2d)
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += 2 * k * out.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total


def full_flops(size: int) -> int:
    with torch.device("meta"):
        model = SPSRNet()
        x = torch.empty(1, 3, size, size)
    return count_flops(model, x)


# --------------------------------------------------------------------------- network only


def official_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The official test script's forward: NCHW fp32, no_grad, every spsr fast path off."""
    with torch.no_grad(), plain_forward():
        return sr_of(model(x))


def network_only(size: int, pairs: int, precision: str) -> tuple[float, float, float]:
    """Median seconds (official-style, spsr) over alternating pairs, and the max output difference."""
    torch.manual_seed(0)
    model = SPSRNet().eval()
    plain = SPSRNet().eval()
    plain.load_state_dict(model.state_dict())
    up = TiledUpscaler(model, 4, precision=precision)  # what `spsr upscale` builds
    x = torch.rand(1, 3, size, size)
    official_forward(plain, x[..., :32, :32])
    up(x[0, :, :32, :32])
    t_off, t_spsr = [], []
    for _ in range(pairs):
        t = time.perf_counter()
        ref = official_forward(plain, x).clamp(0, 1)
        t_off.append(time.perf_counter() - t)
        t = time.perf_counter()
        out = up(x[0])
        t_spsr.append(time.perf_counter() - t)
    diff = float((out - ref[0]).abs().max()) * 255
    return statistics.median(t_off), statistics.median(t_spsr), diff


# --------------------------------------------------------------------------- whole process


def official_child(weights: str, src: str, dst: str) -> None:
    """What the official test script does per image: build, load, read, forward, write."""
    from PIL import Image

    model = SPSRNet()
    model.load_state_dict(torch.load(weights, weights_only=True), strict=True)
    model.eval()
    img = np.asarray(Image.open(src).convert("RGB"), dtype=np.float32) / 255.0
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    out = official_forward(model, x)[0].clamp(0, 1).numpy()
    Image.fromarray((out.transpose(1, 2, 0) * 255.0).round().astype(np.uint8)).save(dst)


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - t


def default_model_samples(pairs: int, precision: str, tmp: Path) -> tuple[float, float, float, float]:
    """``spsr upscale --samples``: the built-in default model against the previous release's.

    The previous default was the same SPSR-G (nf 32, nb 6, residual over bicubic) *with* the fusion
    RRDB at HR resolution, run by the direct fused path (no Winograd): rebuilt here with random
    weights (speed does not depend on them) and run with ``SPSR_WINOGRAD=0``. Returns the median
    seconds (previous, current), the output megapixels of one run, and the current model's FLOP
    share of the previous one (conv hooks, on a 128×128 input).
    """
    from PIL import Image

    from spsr.archs import build_model
    from spsr.checkpoints.io import save_weights
    from spsr.infer import load_model

    current = load_model("default")
    old_spec = dataclasses.replace(current.spec, extra={**current.spec.extra, "fusion_block": True})
    torch.manual_seed(0)
    old_model = build_model(old_spec)
    old = save_weights(tmp / "previous_default.safetensors", old_model, old_spec)
    with torch.device("meta"):
        x = torch.empty(1, 3, 128, 128)
        share = count_flops(build_model(current.spec), x) / count_flops(build_model(old_spec), x)
    env_old = {**os.environ, "SPSR_WINOGRAD": "0"}
    env_new = {k: v for k, v in os.environ.items() if k not in ("SPSR_WINOGRAD", "SPSR_PLAIN_FORWARD")}
    runs = {"previous": (["--weights", str(old)], env_old), "current": ([], env_new)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(pairs):
        for name, (extra, env) in runs.items():
            cmd = [sys.executable, "-m", "spsr_cli.app", "upscale", "--samples", str(tmp / f"samples_{name}"),
                   *extra, "--precision", precision, "--overwrite", "--quiet"]
            times[name].append(_timed(cmd, env))
    mp = 0.0
    for f in (tmp / "samples_current").iterdir():
        with Image.open(f) as im:
            mp += im.width * im.height / 1e6
    return statistics.median(times["previous"]), statistics.median(times["current"]), mp, share


def whole_process(size: int, pairs: int, precision: str, tmp: Path,
                  weights: Path) -> tuple[float, float, float, list[float]]:
    """Median seconds (official-style script, ``spsr upscale``), max output difference, and each
    alternating pair's ratio (how much the machine's speed moved during the run)."""
    from PIL import Image

    rng = np.random.default_rng(size)
    src = tmp / f"in_{size}.png"
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(src)
    off_dst, spsr_dst = tmp / f"official_{size}.png", tmp / f"spsr_{size}.png"
    off_cmd = [sys.executable, __file__, "--official-child", str(weights), str(src), str(off_dst)]
    spsr_cmd = [sys.executable, "-m", "spsr_cli.app", "upscale", str(src), str(spsr_dst), "--weights",
                str(weights), "--precision", precision, "--overwrite", "--quiet"]
    t_off, t_spsr = [], []
    for _ in range(pairs):
        t_off.append(_timed(off_cmd))
        t_spsr.append(_timed(spsr_cmd))
    a = np.asarray(Image.open(off_dst), dtype=np.int16)
    b = np.asarray(Image.open(spsr_dst), dtype=np.int16)
    ratios = [o / n for o, n in zip(t_off, t_spsr, strict=True)]
    return statistics.median(t_off), statistics.median(t_spsr), float(np.abs(a - b).max()), ratios


# --------------------------------------------------------------------------- memory


def rss_child(cmd: list[str]) -> None:
    """Run ``cmd`` as this process's only child and print its peak RSS in MiB."""
    subprocess.run(cmd, check=True, capture_output=True)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


def tiled_peak_rss(tmp: Path, precision: str) -> tuple[float, float, str]:
    """Peak RSS (MiB) of ``spsr upscale --tile 128`` with the built-in default model, 256² vs 1024²."""
    from PIL import Image

    peaks = []
    for size in (256, 1024):
        src = tmp / f"rss_{size}.png"
        Image.fromarray(np.random.default_rng(size).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(src)
        cmd = [sys.executable, "-m", "spsr_cli.app", "upscale", str(src), str(tmp / f"rss_{size}_x4.png"),
               "--tile", "128", "--precision", precision, "--overwrite", "--quiet"]
        out = subprocess.run([sys.executable, __file__, "--rss-child", *cmd], check=True,
                             capture_output=True, text=True)
        peaks.append(float(out.stdout.strip().splitlines()[-1]))
    return peaks[0], peaks[1], "the built-in default model"


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="128,256", help="input sizes (→ ×4) for the timing parts")
    ap.add_argument("--pairs", type=int, default=3, help="alternating official/spsr pairs per size")
    ap.add_argument("--precision", default="auto", help="what spsr upscale gets (auto picks bf16 only where fast)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: peaks,network,process,default,memory")
    ap.add_argument("--official-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--rss-child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.official_child:
        official_child(*args.official_child)
        return
    if args.rss_child:
        rss_child(args.rss_child)
        return
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(v) for v in args.sizes.split(",") if v]

    cpu = torch.device("cpu")
    dtype = resolve_precision(args.precision, cpu)
    env = ", ".join(f"{k}={os.environ[k]}" for k in ISA_VARS if k in os.environ) or "no ISA limits set"
    print(f"CPU: {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"ATen CPU capability {torch.backends.cpu.get_cpu_capability()}; {env}")
    print(f"spsr path: --precision {args.precision} -> {str(dtype).replace('torch.', '')} "
          f"({precision_reason(args.precision, cpu)}), channels-last")
    if dtype == torch.float32:
        wino = os.environ.get("SPSR_WINOGRAD", "") not in ("0", "off")
        print("fp32 RRDBs: " + ("Winograd F(4×4,3×3) on maps of ≥ 48² pixels (4× fewer multiplications; "
                                 "GFLOP/s below count the direct convolution's FLOPs, so they can pass the "
                                 "machine's rates)" if wino else "direct oneDNN convolutions (SPSR_WINOGRAD=0)"))
    else:
        print("bf16 autocast: direct oneDNN convolutions (the Winograd path is fp32 only)")

    gemm = conv_cl = conv_nchw = float("nan")
    if "peaks" not in skip:
        gemm = gemm_rate()
        conv_nchw, conv_cl = conv_rate(False), conv_rate(True)
        print(f"machine: fp32 GEMM 4096² {gemm:.0f} GFLOP/s; 3×3 conv 192→32 @256²: NCHW {conv_nchw:.0f}, "
              f"channels-last {conv_cl:.0f} GFLOP/s; memory copy {copy_rate():.1f} GB/s")
    flops = {s: full_flops(s) for s in sizes}
    for s in sizes:
        print(f"full SPSR-G (nf 64, nb 23) {s}×{s} -> {4 * s}×{4 * s}: {flops[s] / 1e12:.3f} TFLOP (conv hooks)")

    def rates(label: str, seconds: float, s: int) -> str:
        r = flops[s] / seconds / 1e9
        return (f"{label} {seconds:.2f} s = {r:.0f} GFLOP/s ({r / gemm:.0%} of GEMM, "
                f"{r / conv_cl:.0%} of the channels-last conv)")

    if "network" not in skip:
        for s in sizes:
            t_off, t_spsr, diff = network_only(s, args.pairs, args.precision)
            print(f"network only {s}² (median of {args.pairs}): {rates('official-style', t_off, s)}; "
                  f"{rates('spsr', t_spsr, s)}; speed-up {t_off / t_spsr:.2f}×; max diff {diff:.3f} levels")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "process" not in skip:
            torch.manual_seed(0)
            weights = tmp / "spsr_random.pth"
            torch.save(SPSRNet().state_dict(), weights)
            for s in sizes:
                t_off, t_spsr, diff, ratios = whole_process(s, args.pairs, args.precision, tmp, weights)
                print(f"whole process {s}² (median of {args.pairs}): {rates('official-style', t_off, s)}; "
                      f"{rates('spsr upscale', t_spsr, s)}; speed-up {t_off / t_spsr:.2f}× "
                      f"(pairs {min(ratios):.2f}–{max(ratios):.2f}×); max diff {diff:.0f} levels")
        if "default" not in skip:
            t_old, t_new, mp, share = default_model_samples(args.pairs, args.precision, tmp)
            print(f"default model, spsr upscale --samples, whole process (median of {args.pairs}, "
                  f"{mp:.2f} output MP): previous release's (fusion RRDB, direct convolutions) "
                  f"{t_old:.2f} s = {mp / t_old:.3f} MP/s; current (no fusion RRDB, {share:.0%} of "
                  f"its FLOPs, Winograd) {t_new:.2f} s = {mp / t_new:.3f} MP/s; speed-up {t_old / t_new:.2f}×")
        if "memory" not in skip:
            small, large, what = tiled_peak_rss(tmp, args.precision)
            print(f"peak RSS of spsr upscale --tile 128 ({what}): 256² input {small:.0f} MiB, "
                  f"1024² input {large:.0f} MiB, ratio {large / small:.2f}")


if __name__ == "__main__":
    main()
