"""Engines that run a converted model (ONNX Runtime, OpenVINO): conversion through the cache."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from spsr.engines.base import Engine, EngineUnavailable, NoteCallback, RunSpec
from spsr.engines.cache import cached_conversion, conversion_key, weights_digest
from spsr.engines.convert import OPSET, export_onnx, onnx_missing, onnx_to_openvino
from spsr.lite.runners import first_line

__all__ = ["ConvertedEngine", "StageClock", "first_line"]


class ConvertedEngine(Engine):
    """An engine that runs a file converted from the PyTorch model (on the CPU)."""

    #: ``onnx`` or ``openvino``: the file kind this engine runs.
    file_kind = "onnx"

    def import_error(self) -> str | None:
        """None when the engine's package imports; else why not."""
        raise NotImplementedError

    def unavailable_reason(self, device: torch.device) -> str | None:
        reason = self.import_error() or onnx_missing()
        if reason is not None:
            return reason
        if device.type != "cpu":
            return f"spsr runs {self.name} on the CPU only, not on {device.type}"
        return None

    def converted_file(self, spec: RunSpec, on_note: NoteCallback | None) -> Path:
        """The engine's file for ``spec`` from the conversion cache, converting it on a miss.

        A conversion gives one note: its cost, stage by stage, and what a later run pays instead
        (the cache check: the weights digest and the files' SHA-256s).

        Raises:
            EngineUnavailable: the conversion failed.
            ConfigError: a gradient output of a model without one.
        """
        clock = StageClock()
        with clock("weights digest"):
            digest = spec.cache_key or weights_digest(spec.model)
        key = conversion_key(digest, self.name, self.version(), spec.with_gradient, OPSET)
        kind = self.file_kind

        def build(folder: Path) -> None:
            # A gradient output of a model without a gradient branch fails here, in the trace,
            # with a ConfigError; a cached sr+grad conversion proves the model has one.
            with clock("ONNX export"):
                onnx_path = export_onnx(spec.model, folder / "model.onnx", spec.with_gradient)
            if kind == "openvino":
                with clock("OpenVINO IR"):
                    onnx_to_openvino(onnx_path, folder / "model.xml")
                    onnx_path.unlink()

        try:
            with clock("cache"):
                folder, built = cached_conversion(self.name, key, build, on_rebuild=on_note)
        except OSError as exc:
            raise EngineUnavailable(f"cannot write the {self.name} conversion cache: {exc.strerror or exc}") from None
        except (RuntimeError, ValueError, TypeError, ImportError, AttributeError) as exc:
            raise EngineUnavailable(f"{self.name} could not convert the model ({first_line(exc)})") from None
        if built and on_note is not None:
            on_note(clock.conversion_note(self.name, folder, spec.cache_key is None))
        return folder / ("model.xml" if kind == "openvino" else "model.onnx")


class StageClock:
    """Seconds per stage of one conversion (``cache`` holds the stages built inside it)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - start

    def conversion_note(self, engine: str, folder: Path, digested: bool) -> str:
        """``converted the model for <engine> in T s (stages); cached in <folder>, ...``."""
        t = self.times
        built = sum(v for k, v in t.items() if k not in ("cache", "weights digest"))
        stages = {k: v for k, v in t.items() if k != "cache"}
        # The files' SHA-256s, the manifest and the rename: the cache's own cost.
        stages["SHA-256s"] = t["cache"] - built
        if not digested:
            stages.pop("weights digest", None)
        total = sum(stages.values())
        check = stages.get("weights digest", 0.0) + stages["SHA-256s"]
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
        return (f"converted the model for {engine} in {total:.1f} s ({parts}); cached in {folder}: "
                f"later runs skip this and check the cache (weights digest, SHA-256s), about {check:.1f} s here")
