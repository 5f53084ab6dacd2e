"""First-run and warm-run costs of the converted engines (OpenVINO, ONNX Runtime), stage by stage.

For the full SPSR-G (official layout: nf 64, nb 23, gc 32, ×4; random weights, same cost) and the
built-in ``default`` model, each round converts into a fresh conversion cache and prints:

* the stages of the conversion, each timed on its own: the weights digest (the cache key),
  ``torch.onnx.export``, the ONNX metadata ``spsr export`` adds, OpenVINO's conversion of the
  ONNX (``read_model`` + its MOC transformations, as ``ov.convert_model`` runs them) and its
  ``save_model``, the manifest's SHA-256s, and the first compilation at 64² (OpenVINO
  ``compile_model`` with ``CACHE_DIR``; ONNX Runtime's ``InferenceSession``);
* end to end, as ``spsr upscale`` runs it: ``engine.prepare`` on an empty cache plus the first
  64² call (the first run), then ``engine.prepare`` on the filled cache plus its first 64² call
  (a warm run: digest-checked cache hit, OpenVINO's compiled-model cache), and the note the
  library gives the user.

Engines alternate within a round; medians over rounds. Run:
``python tests/benchmarks/bench_conversion.py [--rounds 3] [--models full builtin]
[--engines openvino onnxruntime] [--threads N]``. Prints numbers only.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

from spsr.engines.converted import StageClock


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "?")
    except OSError:
        return "?"


def build(which: str) -> torch.nn.Module:
    from spsr.archs import ArchSpec, build_model
    from spsr.infer import load_model

    if which == "builtin":
        return load_model("default").model
    torch.manual_seed(0)
    return build_model(ArchSpec("spsr", 4, nf=64, nb=23, gc=32)).eval()


Clock = StageClock  # the library's own per-stage timer, so the stages read as spsr prints them


def sha256_files(folder: Path) -> None:
    from spsr.engines.cache import _file_digest

    for p in sorted(folder.iterdir()):
        if p.is_file():
            _file_digest(p)


def stages(model: torch.nn.Module, engine: str, threads: int, work: Path) -> dict[str, float]:
    """Each stage of one conversion of ``model`` for ``engine``, timed on its own, as
    :meth:`spsr.engines.converted.ConvertedEngine.converted_file` and ``spsr export`` run them."""
    from spsr.engines import convert
    from spsr.engines.cache import weights_digest

    clock = Clock()
    meta = {"spsr_version": "bench", "arch": "{}", "provenance": "x" * 200}
    with clock("weights digest"):
        weights_digest(model)
    onnx_path = work / "model.onnx"
    with clock("torch.onnx.export"):
        convert.export_onnx(model, onnx_path)
    with clock("ONNX metadata (spsr export)"):
        convert.set_onnx_metadata(onnx_path, meta)
    x = torch.rand(1, 3, 64, 64).numpy()
    if engine == "openvino":
        import openvino as ov

        with clock("OpenVINO read_model + MOC"):
            ov_model = convert.onnx_to_openvino_model(onnx_path)
        with clock("ov.save_model"):
            ov.save_model(ov_model, str(work / "model.xml"), compress_to_fp16=False)
        onnx_path.unlink()
        del ov_model
        with clock("manifest SHA-256"):
            sha256_files(work)
        core = ov.Core()
        core.set_property({"CACHE_DIR": str(work / "blobs")})
        with clock("first compile 64² (CACHE_DIR)"):
            read = core.read_model(str(work / "model.xml"))
            read.reshape({read.inputs[0].get_any_name(): list(x.shape)})
            compiled = core.compile_model(read, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                        "INFERENCE_NUM_THREADS": threads})
        with clock("first 64² call"):
            compiled.create_infer_request().infer({0: x})
        del compiled, read, core
    else:
        import onnxruntime as ort

        with clock("manifest SHA-256"):
            sha256_files(work)
        with clock("first session (InferenceSession)"):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.log_severity_level = 3
            session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        with clock("first 64² call"):
            session.run(None, {session.get_inputs()[0].name: x})
        del session
    gc.collect()
    return clock.times


def end_to_end(model: torch.nn.Module, engine: str, notes: list[str]) -> dict[str, float]:
    """``engine.prepare`` + first 64² call on an empty cache, then again on the filled one."""
    from spsr.engines import RunSpec, get_engine

    spec = RunSpec(model, False, torch.float32, torch.device("cpu"), None)
    x = torch.rand(1, 3, 64, 64)
    clock = Clock()
    with clock("first run: prepare (convert)"):
        runner = get_engine(engine).prepare(spec, notes.append)
    with clock("first run: first 64² call"):
        runner(x)
    del runner
    gc.collect()
    with clock("warm run: prepare (cache hit)"):
        runner = get_engine(engine).prepare(spec, notes.append)
    with clock("warm run: first 64² call"):
        runner(x)
    del runner
    gc.collect()
    return clock.times


def report(title: str, rounds: list[dict[str, float]]) -> None:
    keys = list(dict.fromkeys(k for r in rounds for k in r))
    print(f"  {title} (median of {len(rounds)}; each round: {', '.join(f'{sum(r.values()):.1f}' for r in rounds)} s)")
    for k in keys:
        values = [r[k] for r in rounds if k in r]
        print(f"    {k:40s} {statistics.median(values):7.2f} s   ({' '.join(f'{v:.2f}' for v in values)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["full", "builtin"], choices=["full", "builtin"])
    ap.add_argument("--engines", nargs="+", default=["openvino", "onnxruntime"],
                    choices=["openvino", "onnxruntime"])
    ap.add_argument("--parts", nargs="+", default=["stages", "end-to-end"], choices=["stages", "end-to-end"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime
    import openvino

    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs; {args.threads} threads; "
          f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}, "
          f"openvino {openvino.__version__}, onnxruntime {onnxruntime.__version__}")
    for which in args.models:
        model = build(which)
        print(f"\n{which} model ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters)")
        results: dict[tuple[str, str], list[dict[str, float]]] = defaultdict(list)
        notes: dict[str, list[str]] = defaultdict(list)
        runs = [(engine, part) for engine in args.engines for part in args.parts]
        for r in range(args.rounds):
            notes.clear()  # the notes of the last round are printed
            for engine, part in runs:
                with tempfile.TemporaryDirectory(prefix="spsr-bench-conversion-") as tmp:
                    os.environ["SPSR_CACHE"] = tmp
                    work = Path(tmp) / "work"
                    work.mkdir()
                    results[(engine, part)].append(stages(model, engine, args.threads, work) if part == "stages"
                                                   else end_to_end(model, engine, notes[engine]))
            print(f"  round {r + 1} done (load average {os.getloadavg()[0]:.1f})", flush=True)
        for (engine, part), rounds in results.items():
            report(f"{engine}, {part}", rounds)
            for note in notes[engine] if part == "end-to-end" else []:
                print(f"    note: {note}")


if __name__ == "__main__":
    main()
