"""The conversion steps (spsr.engines.convert, spsr.engines.cache): metadata appended to the
ONNX file, OpenVINO IR as ``ov.convert_model`` makes it, the small trace input, and a cache
folder of another layout rebuilt."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spsr.archs import ArchSpec, build_model, sr_of
from spsr.engines.cache import cached_conversion
from spsr.engines.convert import (
    TRACE_SIZE,
    export_onnx,
    one_thread,
    set_onnx_metadata,
    with_onnx_metadata,
)
from spsr.engines.torch_fast import plain_forward

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(5)
    return build_model(ArchSpec("spsr", 4, nf=8, nb=1, gc=4)).eval()


@pytest.fixture(scope="module")
def tiny_onnx(tiny: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return export_onnx(tiny, tmp_path_factory.mktemp("onnx") / "tiny.onnx").read_bytes()


def _levels(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.round(np.clip(a, 0, 1) * 255) - np.round(np.clip(b, 0, 1) * 255)).max())


def test_metadata_is_appended_to_the_file(tiny_onnx: bytes, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_onnx)
    set_onnx_metadata(path, {"arch": json.dumps({"arch": "spsr"}), "scale": "4"})
    both = with_onnx_metadata(path.read_bytes(), {"note": "ünïcode, 2nd call"})
    assert both.startswith(tiny_onnx)  # the model's bytes are kept as they are, not re-serialized
    proto = onnx.load_model_from_string(both)
    assert [(p.key, p.value) for p in proto.metadata_props] == [
        ("arch", '{"arch": "spsr"}'), ("scale", "4"), ("note", "ünïcode, 2nd call")]
    onnx.checker.check_model(proto)
    assert len(proto.graph.initializer) == len(onnx.load_model_from_string(tiny_onnx).graph.initializer)
    session = ort.InferenceSession(both, providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["scale"] == "4"


def test_dynamic_export_traced_small_runs_at_any_size(tiny: torch.nn.Module, tiny_onnx: bytes) -> None:
    assert TRACE_SIZE % 4 == 0
    session = ort.InferenceSession(tiny_onnx, providers=["CPUExecutionProvider"])
    for shape in [(1, 3, 33, 17), (2, 3, 5, 40)]:
        x = torch.rand(*shape)
        with torch.inference_mode(), plain_forward():
            ref = sr_of(tiny(x)).numpy()
        (got,) = session.run(None, {"lr": x.numpy()})
        assert got.shape == ref.shape and _levels(got, ref) <= 1


def test_export_restores_the_thread_count(tiny: torch.nn.Module, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), one_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    export_onnx(tiny, tmp_path / "fixed.onnx", fixed_size=(12, 16), batch=1)
    assert torch.get_num_threads() == before


def test_openvino_ir_is_the_one_convert_model_makes(tiny_onnx: bytes, tmp_path: Path) -> None:
    ov = pytest.importorskip("openvino")
    from spsr.engines.convert import onnx_to_openvino, onnx_to_openvino_model

    reference = ov.convert_model(io.BytesIO(tiny_onnx))
    ours = onnx_to_openvino_model(tiny_onnx)  # from memory, and below from a file
    assert sorted(op.get_type_name() for op in ours.get_ops()) == sorted(
        op.get_type_name() for op in reference.get_ops())
    x = np.random.default_rng(0).random((1, 3, 14, 10), dtype=np.float32)
    core = ov.Core()
    outs = [core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0] for m in (reference, ours)]
    assert np.array_equal(outs[0], outs[1])
    ov.save_model(reference, str(tmp_path / "ref.xml"), compress_to_fp16=False)
    (tmp_path / "tiny.onnx").write_bytes(tiny_onnx)
    onnx_to_openvino(tmp_path / "tiny.onnx", tmp_path / "ours.xml", {"arch": "spsr"})
    assert (tmp_path / "ours.bin").read_bytes() == (tmp_path / "ref.bin").read_bytes()


@pytest.mark.parametrize("manifest", ["not json", '{"files": []}', '{"files": {"model.onnx": 3}}', None])
def test_a_foreign_or_old_cache_folder_is_rebuilt(manifest: str | None, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path))
    old = tmp_path / "engines" / "openvino" / "k"
    old.mkdir(parents=True)
    (old / "model.onnx").write_bytes(b"an earlier layout's file")
    if manifest is not None:
        (old / "manifest.json").write_text(manifest, encoding="utf-8")
    notes: list[str] = []

    def build(folder: Path) -> None:
        (folder / "model.xml").write_bytes(b"new")

    folder, built = cached_conversion("openvino", "k", build, on_rebuild=notes.append)
    assert built and folder == old and sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.xml"]
    assert len(notes) == 1 and "damaged" in notes[0]
