"""Engines that run a converted model (ONNX Runtime, OpenVINO): conversion through the cache."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from spsr.engines.base import Engine, EngineUnavailable, NoteCallback, RunSpec
from spsr.engines.cache import cached_conversion, conversion_key, weights_digest
from spsr.engines.convert import OPSET, check_gradient_output, export_onnx, onnx_to_openvino


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


class ConvertedEngine(Engine):
    """An engine that runs a file converted from the PyTorch model (on the CPU)."""

    #: ``onnx`` or ``openvino``: the file kind this engine runs.
    file_kind = "onnx"

    def import_error(self) -> str | None:
        """None when the engine's package imports; else why not."""
        raise NotImplementedError

    def unavailable_reason(self, device: torch.device) -> str | None:
        reason = self.import_error()
        if reason is not None:
            return reason
        if device.type != "cpu":
            return f"spsr runs {self.name} on the CPU only, not on {device.type}"
        return None

    def converted_file(self, spec: RunSpec, on_note: NoteCallback | None) -> Path:
        """The engine's file for ``spec`` from the conversion cache, converting it on a miss.

        Raises:
            EngineUnavailable: the conversion failed.
            ConfigError: a gradient output of a model without one.
        """
        check_gradient_output(spec.model, spec.with_gradient)
        digest = spec.cache_key or weights_digest(spec.model)
        key = conversion_key(digest, self.name, self.version(), spec.with_gradient, OPSET)
        kind = self.file_kind

        def build(folder: Path) -> None:
            onnx_path = export_onnx(spec.model, folder / "model.onnx", spec.with_gradient)
            if kind == "openvino":
                onnx_to_openvino(onnx_path, folder / "model.xml")
                onnx_path.unlink()

        start = time.perf_counter()
        try:
            folder, built = cached_conversion(self.name, key, build, on_rebuild=on_note)
        except OSError as exc:
            raise EngineUnavailable(f"cannot write the {self.name} conversion cache: {exc.strerror or exc}") from None
        except (RuntimeError, ValueError, TypeError, ImportError, AttributeError) as exc:
            raise EngineUnavailable(f"{self.name} could not convert the model ({first_line(exc)})") from None
        if built and on_note is not None:
            on_note(f"converted the model for {self.name} in {time.perf_counter() - start:.1f} s "
                    f"(cached in {folder})")
        return folder / ("model.xml" if kind == "openvino" else "model.onnx")
