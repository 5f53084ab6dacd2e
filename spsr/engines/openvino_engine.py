"""OpenVINO on the CPU: f32, or bf16 where the CPU has it natively (its default there).

The model itself runs in :class:`spsr.lite.runners.OpenVinoModel` (each tile shape compiled once,
as a static-shape model; OpenVINO's compiled-model cache, ``CACHE_DIR``, under the conversion
cache makes later processes skip most of the compilation); this module converts the PyTorch model
through the conversion cache and wraps the runner for tensors.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from spsr.engines.base import EngineUnavailable, NoteCallback, Runner, RunSpec, precision_name
from spsr.engines.converted import ConvertedEngine, first_line
from spsr.lite.runners import EmptyOutput, OpenVinoModel
from spsr.lite.warm import openvino_blobs


def cpu_capabilities() -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (``BF16`` where it is native), or []."""
    try:
        import openvino as ov

        return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - any failure means: nothing known
        return []


class OpenVinoRunner(Runner):
    """:class:`spsr.lite.runners.OpenVinoModel` on tensors."""

    engine = "openvino"

    def __init__(self, xml: Path, dtype: torch.dtype, threads: int) -> None:
        self.precision = precision_name(dtype)
        self.source_file = xml
        self.threads = threads
        self.model = OpenVinoModel(xml, self.precision, threads, openvino_blobs())

    @property
    def compiled(self) -> OrderedDict[tuple[int, ...], Any]:
        """The compiled shapes kept (at most :data:`spsr.lite.runners.MAX_SHAPES`)."""
        return self.model.compiled

    @property
    def compilations(self) -> int:
        return self.model.compilations

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return torch.from_numpy(self.model(x.float().cpu().numpy()))
        except EmptyOutput as exc:
            raise EngineUnavailable(str(exc)) from None


class OpenVinoEngine(ConvertedEngine):
    """OpenVINO's CPU plugin: the fastest engine on CPUs with native bf16 (AMX, AVX512-BF16)."""

    name = "openvino"
    file_kind = "openvino"
    dtypes = (torch.float32, torch.bfloat16)

    def import_error(self) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "openvino is not installed (pip install openvino)"
        return None

    def version(self) -> str:
        import openvino

        return str(openvino.__version__)

    def prepare(self, spec: RunSpec, on_note: NoteCallback | None = None) -> Runner:
        if spec.dtype not in self.dtypes:
            raise EngineUnavailable("spsr runs openvino in f32 or bf16, not fp16")
        xml = self.converted_file(spec, on_note)
        try:
            return OpenVinoRunner(xml, spec.dtype, torch.get_num_threads())
        except Exception as exc:  # noqa: BLE001 - openvino raises its own exception types
            raise EngineUnavailable(f"openvino cannot run the model ({first_line(exc)})") from None
