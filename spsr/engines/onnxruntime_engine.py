"""ONNX Runtime (CPU execution provider, fp32): ``pip install spsr[onnxruntime]``."""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from spsr.engines.base import EngineUnavailable, NoteCallback, Runner, RunSpec
from spsr.engines.converted import ConvertedEngine, first_line


class OnnxRuntimeRunner(Runner):
    engine = "onnxruntime"
    precision = "fp32"

    def __init__(self, path: str, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.session.run(None, {self.input: x.float().cpu().contiguous().numpy()})
        return torch.from_numpy(np.concatenate(outs, axis=1) if len(outs) > 1 else outs[0])


class OnnxRuntimeEngine(ConvertedEngine):
    """ONNX Runtime on the CPU, always fp32 (its CPU provider has no bf16 convolutions)."""

    name = "onnxruntime"
    file_kind = "onnx"
    dtypes = (torch.float32,)

    def import_error(self) -> str | None:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install spsr[onnxruntime])"
        return None

    def version(self) -> str:
        import onnxruntime

        return str(onnxruntime.__version__)

    def prepare(self, spec: RunSpec, on_note: NoteCallback | None = None) -> Runner:
        path = self.converted_file(spec, on_note)
        try:
            return OnnxRuntimeRunner(str(path), torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise EngineUnavailable(f"onnxruntime cannot load the model ({first_line(exc)})") from None
