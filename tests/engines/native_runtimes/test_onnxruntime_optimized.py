"""ONNX Runtime's optimized graph kept between processes (spsr.lite.runners.OnnxRuntimeModel): saved
once, atomically; loaded later with the same outputs; a damaged one rebuilt; an unwritable folder
only costs the saving."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from spsr.archs import ArchSpec, build_model
from spsr.engines.convert import export_onnx
from spsr.lite.runners import OnnxRuntimeModel

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(7)
    model = build_model(ArchSpec("spsr", 4, nf=8, nb=1, gc=4)).eval()
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return np.random.default_rng(2).random((2, 3, 19, 23), dtype=np.float32)


def test_saved_once_then_loaded_with_the_same_outputs(tiny_onnx: Path, batch: np.ndarray, tmp_path: Path) -> None:
    plain = OnnxRuntimeModel(tiny_onnx, 1)(batch)
    folder = tmp_path / "optimized"
    first = OnnxRuntimeModel(tiny_onnx, 1, folder)
    saved = sorted(folder.iterdir())
    assert not first.from_optimized and len(saved) == 1 and saved[0].suffix == ".onnx"
    assert saved[0].stat().st_size > 0  # the temporary file was renamed into place, none left over
    stamp = saved[0].stat().st_mtime_ns
    second = OnnxRuntimeModel(tiny_onnx, 1, folder)
    assert second.from_optimized and sorted(folder.iterdir()) == saved
    assert saved[0].stat().st_mtime_ns == stamp  # loaded, not written again
    np.testing.assert_allclose(first(batch), plain, rtol=0, atol=1e-6)
    np.testing.assert_allclose(second(batch), plain, rtol=0, atol=1e-6)


def test_a_new_source_file_gets_its_own_optimized_graph(tiny_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "optimized"
    OnnxRuntimeModel(tiny_onnx, 1, folder)
    copy = tmp_path / "other.onnx"
    copy.write_bytes(tiny_onnx.read_bytes())
    assert not OnnxRuntimeModel(copy, 1, folder).from_optimized
    assert len(list(folder.iterdir())) == 2


def test_a_damaged_saved_graph_is_replaced(tiny_onnx: Path, batch: np.ndarray, tmp_path: Path) -> None:
    folder = tmp_path / "optimized"
    OnnxRuntimeModel(tiny_onnx, 1, folder)
    (saved,) = folder.iterdir()
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 3])
    again = OnnxRuntimeModel(tiny_onnx, 1, folder)
    assert not again.from_optimized
    np.testing.assert_allclose(again(batch), OnnxRuntimeModel(tiny_onnx, 1)(batch), rtol=0, atol=1e-6)
    assert OnnxRuntimeModel(tiny_onnx, 1, folder).from_optimized  # rebuilt whole


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_only_costs_the_saving(tiny_onnx: Path, batch: np.ndarray, tmp_path: Path) -> None:
    folder = tmp_path / "optimized"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        model = OnnxRuntimeModel(tiny_onnx, 1, folder)
        assert not model.from_optimized and list(folder.iterdir()) == []
        assert model(batch).shape == (2, 3, 76, 92)
    finally:
        folder.chmod(0o700)


def test_a_file_where_the_folder_should_be_only_costs_the_saving(tiny_onnx: Path, batch: np.ndarray,
                                                                  tmp_path: Path) -> None:
    blocker = tmp_path / "optimized"
    blocker.write_text("not a folder")
    model = OnnxRuntimeModel(tiny_onnx, 1, blocker)
    assert not model.from_optimized and blocker.read_text() == "not a folder"
    assert model(batch).shape == (2, 3, 76, 92)
