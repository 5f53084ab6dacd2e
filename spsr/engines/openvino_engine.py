"""OpenVINO on the CPU: f32, or bf16 where the CPU has it natively (its default there).

Each tile shape (batch, height, width) is compiled once, as a static-shape model: on a CPU with
AMX static shapes ran 1.3× faster than one dynamic-shape compilation (``docs/guide/engines.md``).
OpenVINO's own compiled-model cache (``CACHE_DIR``, under the conversion cache) makes later
processes skip most of the compilation.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spsr.engines.base import EngineUnavailable, NoteCallback, Runner, RunSpec, precision_name
from spsr.engines.cache import cache_root
from spsr.engines.converted import ConvertedEngine, first_line

#: Compiled shapes kept per runner (an image has at most nine tile shapes per batch size).
MAX_SHAPES = 32


def openvino_hint(dtype: torch.dtype) -> str:
    """OpenVINO's ``INFERENCE_PRECISION_HINT`` for a compute dtype."""
    return {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}[dtype]


def cpu_capabilities() -> list[str]:
    """OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU (``BF16`` where it is native), or []."""
    try:
        import openvino as ov

        return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - any failure means: nothing known
        return []


class OpenVinoRunner(Runner):
    engine = "openvino"

    def __init__(self, xml: Path, dtype: torch.dtype, threads: int) -> None:
        import openvino as ov

        self.core = ov.Core()
        blobs = cache_root() / "openvino-blobs"
        try:
            blobs.mkdir(parents=True, exist_ok=True)
            self.core.set_property({"CACHE_DIR": str(blobs)})
        except OSError:
            pass  # no compiled-model cache: each process compiles
        self.model = self.core.read_model(str(xml))
        self.config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": openvino_hint(dtype),
                                       "INFERENCE_NUM_THREADS": threads}
        self.precision = precision_name(dtype)
        self.compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.compilations = 0

    def _request(self, shape: tuple[int, ...]) -> Any:
        request = self.compiled.get(shape)
        if request is None:
            model = self.model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            request = self.core.compile_model(model, "CPU", self.config).create_infer_request()
            self.compilations += 1
            self.compiled[shape] = request
            if len(self.compiled) > MAX_SHAPES:
                self.compiled.popitem(last=False)
        else:
            self.compiled.move_to_end(shape)
        return request

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.float().cpu().contiguous().numpy()
        request = self._request(tuple(arr.shape))
        request.infer({0: arr})
        outs = [np.array(request.get_output_tensor(i).data) for i in range(len(request.model_outputs))]
        if any(o.size == 0 for o in outs):  # seen under ONEDNN_MAX_CPU_ISA=AVX2 with bf16
            raise EngineUnavailable(f"openvino returned an empty output in {self.precision}")
        return torch.from_numpy(np.concatenate(outs, axis=1) if len(outs) > 1 else outs[0])


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
