"""Whole processes, as a user times them: ``spsr upscale`` against the official test script's way.

One 128×128 PNG (a crop of scikit-image's astronaut) upscaled ×4 by the full SPSR-G (official
layout: nf 64, nb 23, gc 32; random weights, same cost), each run a fresh process, in alternating
rounds, medians:

* ``official eager fp32``: a script that does what the official test script does — import
  PyTorch, build the network, load the weights (``.pth``), read the image, one fp32 forward,
  write the PNG;
* ``spsr upscale --engine torch``: spsr's torch engine (fused kernels; bf16 autocast under
  ``--precision auto`` where the CPU has native bf16);
* ``spsr upscale`` (``--engine auto``): after a first run (printed apart: conversion, ``auto``'s
  measurement) every later run is a warm start where ``auto`` picked OpenVINO or ONNX Runtime
  (:mod:`spsr.lite`: the cached conversion run without importing PyTorch);
* the same converted model driven directly (``spsr.lite.runners``, with the same caches): in a
  fresh process of its own (import the engine, load, one call: the whole process and its one
  call's time, which like ``spsr upscale``'s is the first of its process) and in this process
  after a warm-up (median of the same number of calls).

Prints the CPU, each process's median wall time and its ratio to the official one, whether it
imported PyTorch, for the warm start the time outside the network (its wall time − the engine's
first call in a fresh process), and the warm start's own network time (``network_seconds`` of its
``--json`` record) against the engine's first call in a fresh process (the 5 % target) and against
a warmed-up call.

Where the warm start ran ONNX Runtime it also times creating a session from the converted file
against loading the optimized graph a first session saved.

``--memory`` then compares the peak resident memory of warm-start processes of the built-in model
(``--tile 128``) on a 1024² and a 256² input (each process's own ``ru_maxrss``; the target: at
most 1.5×).

Run: ``python tests/benchmarks/bench_process.py [--rounds 3] [--size 128] [--precision auto]
[--engine auto|openvino|onnxruntime] [--memory [--memory-engine torch]]`` (``--engine`` names the
warm run's engine; the row keeps its name ``spsr (auto, warm)``; ``--memory-engine torch`` measures
the PyTorch path's peak memory instead of the warm start's).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The official test script's way: plain PyTorch, fp32, one forward. Prints whether torch loaded.
OFFICIAL = """
import sys
import numpy as np, torch
from PIL import Image
from spsr.archs import ArchSpec, build_model
net = build_model(ArchSpec("spsr", 4, nf=64, nb=23, gc=32))
net.load_state_dict(torch.load(sys.argv[1], map_location="cpu"), strict=True)
net.eval()
img = torch.from_numpy(np.asarray(Image.open(sys.argv[2]).convert("RGB"), dtype=np.float32) / 255.0)
with torch.no_grad():
    out = net(img.permute(2, 0, 1)[None])
sr = out[0] if isinstance(out, (tuple, list)) else getattr(out, "sr", out)
arr = (sr[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
Image.fromarray(arr).save(sys.argv[3])
print("TORCH-LOADED", file=sys.stderr)
"""

#: spsr's CLI, saying at exit whether PyTorch was imported.
SPSR = """
import sys
from spsr_cli.app import main
sys.argv = ["spsr", *sys.argv[1:]]
try:
    main()
finally:
    print("TORCH-LOADED" if "torch" in sys.modules else "TORCH-FREE", file=sys.stderr)
"""


#: The converted model a warm start runs, driven directly: import the engine, load, one call.
DIRECT = """
import json, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from spsr.lite.runners import OnnxRuntimeModel, OpenVinoModel
from spsr.lite.warm import onnxruntime_optimized, openvino_blobs
rec = json.loads(Path(sys.argv[1]).read_text())
path = Path(rec["converted"])
model = (OpenVinoModel(path, rec["precision"], rec["threads"], openvino_blobs()) if rec["engine"] == "openvino"
         else OnnxRuntimeModel(path, rec["threads"], onnxruntime_optimized()))
x = (np.asarray(Image.open(sys.argv[2]), dtype=np.float32) / 255).transpose(2, 0, 1)[None].copy()
start = time.perf_counter()
model(x)
print("FIRST-CALL", time.perf_counter() - start)
"""


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    """Wall seconds of a process (run in ``cwd``), and its stdout + stderr."""
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args[:4])}…\n{done.stderr[-2000:]}")
    return took, done.stdout + done.stderr


def network_seconds(output: str) -> float | None:
    """``network_seconds`` of the first ``--json`` record in a process's output."""
    for line in output.splitlines():
        if line.startswith("{"):
            value = json.loads(line).get("network_seconds")
            return float(value) if value is not None else None
    return None


def first_call(output: str) -> float:
    """The ``FIRST-CALL`` seconds :data:`DIRECT` printed."""
    return float(next(line.split()[1] for line in output.splitlines() if line.startswith("FIRST-CALL")))


#: Runs a command and prints its peak resident memory (KiB) and whether it ran without PyTorch.
PEAK = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if done.returncode:
    raise SystemExit(done.stderr[-2000:])
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "TORCH-FREE" in done.stderr)
"""


def peak_memory(tmp: Path, env: dict[str, str], options: list[str]) -> None:
    """Peak RSS of warm-start processes of the built-in model, ``--tile 128``, on a 256² and a
    1024² input (a first full run on the 256² input records the warm start both then use: the
    request, not the image size, is its key); with ``--engine torch`` in ``options``, of the
    PyTorch path's processes."""
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    peaks = {}
    for side in (256, 1024):
        src = tmp / f"in{side}.png"
        photo.resize((side, side), Image.BICUBIC).save(src)
        cmd = [sys.executable, "-c", SPSR, "upscale", str(src), str(tmp / f"out{side}.png"), *options,
               "--tile", "128"]
        if side == 256:
            run(cmd, env)  # the full run that records the warm start
        out = subprocess.run([sys.executable, "-c", PEAK, *cmd], capture_output=True, text=True, env=env,
                             check=True).stdout.split()
        peaks[side] = int(out[0]) / 1024
        print(f"  peak RSS, {side}² → {side * 4}², --tile 128: {peaks[side]:.0f} MiB "
              f"({'no PyTorch' if out[1] == 'True' else 'PyTorch'})")
    print(f"  1024² / 256²: {peaks[1024] / peaks[256]:.2f}× (target ≤ 1.5×)")


def onnxruntime_sessions(converted: Path, threads: int, rounds: int) -> None:
    """Seconds to create an ONNX Runtime session from the converted file (optimizing it) against
    loading the optimized graph a first session saved, alternating, medians."""
    import shutil

    from spsr.lite.runners import OnnxRuntimeModel

    folder = Path(tempfile.mkdtemp(prefix="ort_optimized_"))
    OnnxRuntimeModel(converted, threads, folder)  # saves the optimized graph
    plain: list[float] = []
    saved: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        OnnxRuntimeModel(converted, threads)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        model = OnnxRuntimeModel(converted, threads, folder)
        saved.append(time.perf_counter() - start)
        assert model.from_optimized
    shutil.rmtree(folder, ignore_errors=True)
    print(f"  ONNX Runtime session: {statistics.median(plain):.2f} s from the converted file "
          f"({'/'.join(f'{t:.2f}' for t in plain)}), {statistics.median(saved):.2f} s from the saved optimized "
          f"graph ({'/'.join(f'{t:.2f}' for t in saved)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--engine", default="auto", choices=["auto", "openvino", "onnxruntime"],
                    help="the engine of the spsr run that is timed warm (auto: what it measures fastest)")
    ap.add_argument("--memory", action="store_true", help="also the tiled peak memory, 1024² against 256²")
    ap.add_argument("--memory-engine", default=None, choices=["torch", "openvino", "onnxruntime"],
                    help="the engine of the --memory processes (default: the warm run's; torch: the PyTorch path)")
    args = ap.parse_args()

    import numpy as np
    import torch
    from PIL import Image
    from skimage import data

    from spsr.archs import ArchSpec, build_model
    from spsr.cpu import cpu_model_name
    from spsr.infer import save_weights

    tmp = Path(tempfile.mkdtemp(prefix="bench_process_"))
    torch.manual_seed(0)
    spec = ArchSpec("spsr", 4, nf=64, nb=23, gc=32)
    net = build_model(spec).eval()
    torch.save(net.state_dict(), tmp / "w.pth")
    save_weights(tmp / "w.safetensors", net, spec, {"note": "random full SPSR-G for timing"})
    lr = tmp / "lr.png"
    Image.fromarray(data.astronaut()[100:100 + args.size, 180:180 + args.size]).save(lr)
    env = {**os.environ, "SPSR_CACHE": str(tmp / "cache")}
    env.pop("SPSR_ENGINE", None)
    py = sys.executable
    common = ["--weights", str(tmp / "w.safetensors"), "--precision", args.precision, "--overwrite"]
    warm_engine = ["--engine", args.engine] if args.engine != "auto" else []
    procs = {
        "official eager fp32": [py, "-c", OFFICIAL, str(tmp / "w.pth"), str(lr), str(tmp / "official.png")],
        "spsr --engine torch": [py, "-c", SPSR, "upscale", str(lr), str(tmp / "torch.png"), *common,
                                "--engine", "torch"],
        "spsr (auto, warm)": [py, "-c", SPSR, "upscale", str(lr), str(tmp / "auto.png"), *common, *warm_engine,
                              "--json"],
    }
    print(f"CPU: {cpu_model_name()}; {torch.get_num_threads()} threads; {args.size}² → {args.size * 4}², "
          f"--precision {args.precision}")
    first, _ = run(procs["spsr (auto, warm)"], env)
    print(f"  first spsr upscale (auto: measurement, conversion, compilation): {first:.1f} s")

    record_file = next((tmp / "cache" / "engines" / "warm").glob("*.json"))
    record = json.loads(record_file.read_text())
    from spsr.lite.runners import OnnxRuntimeModel, OpenVinoModel
    from spsr.lite.warm import onnxruntime_optimized, openvino_blobs

    os.environ["SPSR_CACHE"] = env["SPSR_CACHE"]
    converted = Path(record["converted"])
    model = (OpenVinoModel(converted, record["precision"], record["threads"], openvino_blobs())
             if record["engine"] == "openvino" else OnnxRuntimeModel(converted, record["threads"],
                                                                      onnxruntime_optimized()))
    x = (np.asarray(Image.open(lr), dtype=np.float32) / 255).transpose(2, 0, 1)[None].copy()
    model(x)
    procs["engine directly, own process"] = [py, "-c", DIRECT, str(record_file), str(lr)]

    times: dict[str, list[float]] = {name: [] for name in procs}
    warmed: list[float] = []
    fresh_call: list[float] = []
    torch_free: dict[str, bool] = {}
    in_spsr: list[float] = []
    for _ in range(args.rounds):
        for name, cmd in procs.items():
            took, out = run(cmd, env)
            times[name].append(took)
            if name.startswith("spsr"):
                torch_free[name] = "TORCH-FREE" in out
            if name == "spsr (auto, warm)" and network_seconds(out) is not None:
                in_spsr.append(network_seconds(out) or 0.0)
            if name == "engine directly, own process":
                fresh_call.append(first_call(out))
        start = time.perf_counter()
        model(x)
        warmed.append(time.perf_counter() - start)
    base = statistics.median(times["official eager fp32"])
    print(f"  medians of {args.rounds} alternating rounds (warm start ran {record['engine']} "
          f"{record['precision']}):")
    for name, ts in times.items():
        med = statistics.median(ts)
        torch_note = "" if name not in torch_free else ("  no PyTorch" if torch_free[name] else "  PyTorch")
        print(f"    {name:28s} {med:6.2f} s  {base / med:5.2f}×  ({'/'.join(f'{t:.2f}' for t in ts)}){torch_note}")
    fresh, warm_call = statistics.median(fresh_call), statistics.median(warmed)
    print(f"  the engine's one call: {fresh:.2f} s as the first of a fresh process "
          f"({'/'.join(f'{t:.2f}' for t in fresh_call)}), {warm_call:.2f} s after a warm-up in this process")
    outside = statistics.median(times["spsr (auto, warm)"]) - fresh
    print(f"  warm start outside the network (start-up, imports, cache look-up, image I/O): {outside:.2f} s")
    if in_spsr:
        inner = statistics.median(in_spsr)
        print(f"  warm start's network time (network_seconds, {'/'.join(f'{t:.2f}' for t in in_spsr)}): "
              f"{inner:.2f} s, {100 * (inner / fresh - 1):+.1f} % against the engine's first call in a fresh "
              f"process (target ≤ +5 %), {100 * (inner / warm_call - 1):+.1f} % against a warmed-up call")
    a = np.asarray(Image.open(tmp / "official.png"), dtype=int)
    for name in ("torch", "auto"):
        d = np.abs(a - np.asarray(Image.open(tmp / f"{name}.png"), dtype=int))
        print(f"  {name} vs official: max {d.max()} / mean {d.mean():.4f} levels")
    if record["engine"] == "onnxruntime":
        onnxruntime_sessions(converted, record["threads"], args.rounds)
    if args.memory:
        engine = ["--engine", args.memory_engine] if args.memory_engine else warm_engine
        peak_memory(tmp, env, ["--precision", args.precision, "--overwrite", *engine])


if __name__ == "__main__":
    main()
