"""Inference engines behind one interface: PyTorch, OpenVINO and ONNX Runtime.

``--engine auto`` (:func:`choose_engine`) picks (``docs/guide/engines.md``):

* a CUDA (or other non-CPU) device: PyTorch;
* a CPU with native bf16 (AVX512-BF16 or AMX, as ``/proc/cpuinfo`` or OpenVINO's
  ``OPTIMIZATION_CAPABILITIES`` report it, and not capped by ``ONEDNN_MAX_CPU_ISA``) with
  OpenVINO installed: OpenVINO, in bf16 under ``--precision auto`` (about 3× spsr's own bf16 path
  on the full SPSR-G) and in f32 under ``--precision fp32`` (on a par with spsr's fused kernels);
* any other CPU: whichever of spsr's own kernels (PyTorch) and the installed engines measured
  fastest on one tile of this model, measured once per machine, model, spsr version, precision
  and tile shape and cached (:mod:`spsr.engines.autotune`; ``--engine-retune`` measures again):
  on AVX2 the winner changed with the model and the machine's load.

An engine that cannot be imported or cannot run the model gives one note and PyTorch runs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from spsr import cpu
from spsr.engines.base import (
    Engine,
    EngineUnavailable,
    NoteCallback,
    Runner,
    RunSpec,
    precision_name,
)
from spsr.engines.onnxruntime_engine import OnnxRuntimeEngine
from spsr.engines.openvino_engine import OpenVinoEngine
from spsr.engines.torch_engine import TorchEngine
from spsr.errors import ConfigError

#: The engines by name, in the order ``--engine`` lists them.
ENGINES: dict[str, Engine] = {e.name: e for e in (TorchEngine(), OpenVinoEngine(), OnnxRuntimeEngine())}
#: ``--engine`` choices.
ENGINE_CHOICES = ("auto", *ENGINES)
#: What :func:`auto_engine` answers where the engine is to be measured (a CPU without native bf16).
MEASURE = "measure"


def get_engine(name: str) -> Engine:
    """The engine called ``name``.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; use one of {', '.join(ENGINE_CHOICES)}")
    return ENGINES[name]


def auto_engine(device: torch.device) -> tuple[str, str]:
    """``auto``'s engine for ``device`` and why, in a few words (see the module docstring):
    :data:`MEASURE` on a CPU without native bf16, where the engine is measured per model."""
    if device.type != "cpu":
        return "torch", f"{device.type}: PyTorch"
    if not cpu.cpu_has_fast_bf16():
        return MEASURE, "no native bf16 on this CPU: the engine measured fastest for this model"
    reason = ENGINES["openvino"].unavailable_reason(device)
    if reason is not None:
        return "torch", f"native bf16 but {reason}"
    return "openvino", "the CPU has native bf16 (AVX512-BF16/AMX): OpenVINO"


def choose_engine(
    name: str, device: torch.device, measure: Callable[[], str] | None = None
) -> tuple[Engine, list[str]]:
    """The engine to run for ``--engine name`` on ``device``, and notes for the user (one line
    each: why an engine asked for cannot run, so PyTorch runs instead).

    Args:
        name: ``auto`` or an engine's name.
        device: where the model runs.
        measure: where ``auto`` is to be measured (:data:`MEASURE`), returns the engine's name
            (:func:`spsr.engines.autotune.tuned_engine` for the model); None: PyTorch.

    Raises:
        ConfigError: an unknown engine name.
    """
    if name == "auto":
        chosen = auto_engine(device)[0]
        if chosen == MEASURE:
            chosen = measure() if measure is not None else "torch"
        return ENGINES[chosen], []
    engine = get_engine(name)
    reason = engine.unavailable_reason(device)
    if reason is not None:
        return ENGINES["torch"], [f"engine {name} cannot run: {reason}; PyTorch runs"]
    return engine, []


__all__ = [
    "ENGINES", "ENGINE_CHOICES", "MEASURE", "Engine", "EngineUnavailable", "NoteCallback", "RunSpec", "Runner",
    "auto_engine", "choose_engine", "get_engine", "precision_name",
]
