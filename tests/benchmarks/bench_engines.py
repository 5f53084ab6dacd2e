"""Engines side by side on one model, in one process, alternating rounds, medians.

Runs, on the full SPSR-G (official layout: nf 64, nb 23, gc 32, ×4; random weights, same cost)
and on the built-in model, at 128² and 256² (whole image, one forward):

* ``eager fp32``: the plain PyTorch forward, the official test script's way (the reference);
* ``spsr torch``: spsr's torch engine as ``spsr upscale --engine torch`` runs it (fused and
  Winograd kernels in fp32, bf16 autocast under ``--precision auto`` where the CPU has it);
* ``onnxruntime``: ONNX Runtime's CPU provider (fp32);
* ``openvino f32`` and ``openvino default`` (bf16 where the CPU has it natively).

Prints the CPU's ISA flags, each engine's precision, first-run (conversion + compilation) and
warm-run (conversion cache hit + compilation from OpenVINO's cache) costs, then per size the
median seconds, the speed-up over eager fp32 and the max / mean difference in 8-bit levels.
``--no-eager`` leaves the eager reference out (the first engine listed is then the reference);
``--auto`` also runs ``--engine auto``'s own one-tile measurement (alone with ``--pairs 0``) (``spsr.engines.autotune``,
``--engine-retune``, a tile of each size) and prints its line: what ``auto`` picks here.

Run: ``python tests/benchmarks/bench_engines.py [--pairs 3] [--sizes 128 256] [--models full builtin]
[--no-eager] [--auto]``. Prints numbers only; the conversion cache is a temporary folder unless
``--cache`` is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch


def isa_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        flags = []
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")
    return " ".join(f for f in wanted if f in flags) or "unknown"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
    except OSError:
        return "?"


def levels(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    d = ((a.clamp(0, 1) * 255).round() - (b.clamp(0, 1) * 255).round()).abs()
    return float(d.max()), float(d.mean())


def build(which: str) -> torch.nn.Module:
    from spsr.archs import ArchSpec, build_model
    from spsr.infer import load_model

    if which == "builtin":
        return load_model("default").model
    torch.manual_seed(0)
    return build_model(ArchSpec("spsr", 4, nf=64, nb=23, gc=32)).eval()


def engines(model: torch.nn.Module, names: list[str],
            eager_reference: bool = True) -> dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]]:
    """name → (run on a (1,3,h,w) tensor, precision); prints first/warm costs of converted engines."""
    from spsr.archs import sr_of
    from spsr.engines import ENGINES, RunSpec, get_engine
    from spsr.engines.cache import weights_digest
    from spsr.engines.torch_fast import plain_forward
    from spsr.infer.precision import resolve_precision

    cpu = torch.device("cpu")
    out: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {}

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), plain_forward():
            return sr_of(model(x))

    if eager_reference:
        out["eager fp32"] = (eager, "fp32")
    auto = resolve_precision("auto", cpu)
    key = weights_digest(model)
    for name in names:
        if name == "spsr torch":
            runner = get_engine("torch").prepare(RunSpec(model, False, auto, cpu, key))
            out[name] = (runner, runner.precision)
            continue
        engine = "openvino" if name.startswith("openvino") else name
        if ENGINES[engine].import_error() is not None:
            print(f"  {name}: skipped ({ENGINES[engine].import_error()})")
            continue
        dtype = torch.float32 if name in ("openvino f32", "onnxruntime") else auto
        spec = RunSpec(model, False, dtype, cpu, key)
        probe = torch.rand(1, 3, 64, 64)
        t = time.perf_counter()
        runner = get_engine(engine).prepare(spec)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        runner(probe)
        first_call = time.perf_counter() - t
        t = time.perf_counter()
        warm = get_engine(engine).prepare(spec)
        warm_prep = time.perf_counter() - t
        t = time.perf_counter()
        warm(probe)
        warm_call = time.perf_counter() - t
        print(f"  {name}: first run {prep:.1f} s convert/load + {first_call:.2f} s first 64² call; "
              f"warm run {warm_prep:.2f} s load + {warm_call:.2f} s first 64² call")
        out[name] = (warm, warm.precision)
    return out


def timed(runs: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]], size: int, pairs: int) -> None:
    """Warm each engine up at ``size``², then ``pairs`` alternating rounds; print the medians."""
    reference = next(iter(runs))
    torch.manual_seed(size)
    x = torch.rand(1, 3, size, size)
    for run, _ in runs.values():  # warm-up (compiles the shape)
        run(x)
    times: dict[str, list[float]] = {name: [] for name in runs}
    outs: dict[str, torch.Tensor] = {}
    for _ in range(pairs):
        for name, (run, _) in runs.items():
            t = time.perf_counter()
            outs[name] = run(x)[:, :3]
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times[reference])
    each = "; ".join(f"{name} " + "/".join(f"{t:.2f}" for t in ts) for name, ts in times.items())
    print(f"  {size}² → {size * 4}², median of {pairs} (each round: {each}), vs {reference}:")
    for name, (_, precision) in runs.items():
        med = statistics.median(times[name])
        worst, mean = levels(outs[name], outs[reference])
        print(f"    {name:18s} {precision:5s} {med:7.2f} s  {base / med:5.2f}×  "
              f"max {worst:.0f} / mean {mean:.4f} levels")


def auto_pick(model: torch.nn.Module, size: int) -> str:
    """What ``--engine auto`` picks for ``model`` at a ``size``² tile, measuring anew (its own line)."""
    from spsr.engines import MEASURE, RunSpec, auto_engine
    from spsr.engines.autotune import tuned_engine
    from spsr.engines.cache import weights_digest
    from spsr.infer.precision import resolve_precision

    cpu = torch.device("cpu")
    rule, why = auto_engine(cpu)
    if rule != MEASURE:
        return f"{rule} ({why})"
    lines: list[str] = []
    spec = RunSpec(model, False, resolve_precision("auto", cpu), cpu, weights_digest(model))
    choice = tuned_engine(spec, (1, 3, size, size), retune=True, on_note=lines.append)
    measured = [line for line in lines if "measured one" in line]
    return f"{choice.engine}" + (f" — {measured[0]}" if measured else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3,
                    help="alternating rounds per size (0: none, only --auto's measurement)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--models", nargs="+", default=["full", "builtin"], choices=["full", "builtin"])
    ap.add_argument("--engines", nargs="+",
                    default=["spsr torch", "onnxruntime", "openvino f32", "openvino default"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--cache", default=None, help="conversion cache root (default: a temporary folder)")
    ap.add_argument("--no-eager", action="store_true", help="leave out the eager fp32 reference")
    ap.add_argument("--auto", action="store_true", help="also run --engine auto's one-tile measurement")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tmp = None
    if args.cache is None:
        tmp = tempfile.TemporaryDirectory(prefix="spsr-bench-engines-")
        os.environ["SPSR_CACHE"] = tmp.name
    else:
        os.environ["SPSR_CACHE"] = args.cache
    from spsr.infer.precision import precision_reason

    print(f"CPU: {cpu_name()}; ISA flags: {isa_flags()}; {args.threads} threads; "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}")
    print(f"--precision auto: {precision_reason('auto', torch.device('cpu'))}")
    try:
        from spsr.engines.openvino_engine import cpu_capabilities

        print(f"OpenVINO OPTIMIZATION_CAPABILITIES: {' '.join(cpu_capabilities()) or '(none)'}")
    except ImportError:
        pass
    for which in args.models:
        model = build(which)
        print(f"\n{which} model ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)")
        runs = engines(model, args.engines, eager_reference=not args.no_eager) if args.pairs else {}
        for size in args.sizes:
            if runs:
                timed(runs, size, args.pairs)
            if args.auto:
                print(f"  {size}² --engine auto: {auto_pick(model, size)}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
