"""Every conversion goes through PyTorch's ONNX exporter, which needs the ``onnx`` package: it is a
base dependency (tests/test_dependencies.py), and where it is missing the converted engines and
``spsr export`` say so in one line instead of failing inside the exporter (a plain ``pip install``
once ran PyTorch under ``--engine auto`` on a native-bf16 CPU, with a line about
``OnnxExporterError``).

These tests never import OpenVINO or ONNX Runtime (the runner forbids it): the package checks are
``importlib.util.find_spec`` calls, patched here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from spsr.archs import ArchSpec, build_model
from spsr.engines import ENGINES, auto_engine, choose_engine
from spsr.infer import save_weights
from spsr_cli.app import app


@pytest.fixture
def no_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        if name == "onnx" or name.startswith("onnx."):
            return None
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_converted_engines_name_the_missing_onnx_package(no_onnx: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import spsr.cpu as cpu

    for name in ("openvino", "onnxruntime"):  # as if the runtimes themselves were installed
        monkeypatch.setattr(type(ENGINES[name]), "import_error", lambda self: None)
    cpu_dev = torch.device("cpu")
    for name in ("openvino", "onnxruntime"):
        reason = ENGINES[name].unavailable_reason(cpu_dev)
        assert reason is not None and "onnx package is missing" in reason and "pip install onnx" in reason
        engine, notes = choose_engine(name, cpu_dev)
        assert engine.name == "torch"
        assert len(notes) == 1 and notes[0].startswith(f"engine {name} cannot run: the onnx package")
    monkeypatch.setattr(cpu, "cpu_has_fast_bf16", lambda: True)
    chosen, why = auto_engine(cpu_dev)
    assert chosen == "torch" and "native bf16 but the onnx package is missing" in why


def test_with_onnx_present_the_engines_only_ask_for_their_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    assert importlib.util.find_spec("onnx") is not None, "onnx is a base dependency"
    monkeypatch.setattr(type(ENGINES["openvino"]), "import_error", lambda self: None)
    assert ENGINES["openvino"].unavailable_reason(torch.device("cpu")) is None


def test_export_without_onnx_is_one_line_and_writes_nothing(no_onnx: None, tmp_path: Path) -> None:
    spec = ArchSpec("rrdb", 4, nf=8, nb=1, gc=4)
    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_weights(weights, build_model(spec), spec, {"note": "onnx dependency test"})
    for out, kind in (("m.onnx", "ONNX"), ("m.xml", "OpenVINO IR")):
        result = CliRunner().invoke(app, ["export", str(weights), "-o", str(tmp_path / out)])
        assert result.exit_code != 0
        assert f"exporting {kind} needs the onnx package (pip install onnx)" in result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [weights.name]
