"""ONNX Runtime (CPU execution provider, fp32): ``pip install spsr[onnxruntime]``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from spsr.engines.base import EngineUnavailable, NoteCallback, Runner, RunSpec
from spsr.engines.converted import ConvertedEngine, first_line
from spsr.lite.runners import OnnxRuntimeModel
from spsr.lite.warm import onnxruntime_optimized


class OnnxRuntimeRunner(Runner):
    """:class:`spsr.lite.runners.OnnxRuntimeModel` on tensors."""

    engine = "onnxruntime"
    precision = "fp32"

    def __init__(self, path: Path, threads: int) -> None:
        self.source_file = path
        self.threads = threads
        self.model = OnnxRuntimeModel(path, threads, onnxruntime_optimized())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.model(x.float().cpu().numpy()))


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
            return OnnxRuntimeRunner(path, torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise EngineUnavailable(f"onnxruntime cannot load the model ({first_line(exc)})") from None
