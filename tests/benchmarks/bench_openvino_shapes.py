"""OpenVINO f32: one dynamic-shape compilation against one static compilation per tile shape —
time and peak memory of a tiled run (``--tile 128``, overlap 16, batch 4), one process per case.

    python tests/benchmarks/bench_openvino_shapes.py MODEL.xml            # 256² and 1024², both modes

``MODEL.xml`` is a converted model (``<spsr cache>/engines/openvino/<key>/model.xml``). Prints
seconds and ``ru_maxrss`` per case; the engines guide's "Tiles and shapes" quotes its numbers.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time


def child(xml: str, mode: str, side: int) -> None:
    import numpy as np
    import openvino as ov

    from spsr.lite.tiles import run_tiled

    core = ov.Core()
    model = core.read_model(xml)
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2}
    requests: dict[tuple[int, ...], object] = {}

    def run(x: np.ndarray) -> np.ndarray:
        shape = () if mode == "dynamic" else tuple(x.shape)
        if shape not in requests:
            m = model
            if shape:
                m = model.clone()
                m.reshape({m.inputs[0].get_any_name(): list(shape)})
            requests[shape] = core.compile_model(m, "CPU", config).create_infer_request()
        request = requests[shape]
        request.infer({0: np.ascontiguousarray(x)})  # type: ignore[attr-defined]
        return np.array(request.get_output_tensor(0).data)  # type: ignore[attr-defined]

    img = np.random.default_rng(0).random((3, side, side), dtype=np.float32)
    start = time.perf_counter()
    run_tiled(img, run, 4, 128, 16, 4)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{mode:8s} {side:5d}²  {time.perf_counter() - start:7.1f} s  {peak:7.0f} MiB")


def main() -> None:
    if sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    for mode in ("static", "dynamic"):
        for side in (256, 1024):
            subprocess.run([sys.executable, __file__, "--child", sys.argv[1], mode, str(side)], check=True)


if __name__ == "__main__":
    main()
