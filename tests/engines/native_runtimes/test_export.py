"""``spsr export``: each family and scale as ONNX / OpenVINO IR, run by its engine, within one
grey level of the PyTorch forward (fp32); metadata; bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from spsr.archs import ArchSpec, build_model, sr_of
from spsr.infer import save_weights
from spsr_cli.app import app

ort = pytest.importorskip("onnxruntime")
runner = CliRunner()


def _weights(tmp_path: Path, spec: ArchSpec) -> Path:
    torch.manual_seed(0)
    path = tmp_path / f"{spec.arch}_x{spec.scale}.safetensors"
    save_weights(path, build_model(spec), spec, {"note": "export test"})
    return path


def _reference(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    from spsr.archs import SROutput
    from spsr.engines.torch_fast import plain_forward
    from spsr.infer import load_model

    model = load_model(str(path)).model
    with torch.inference_mode(), plain_forward():
        raw = model(torch.from_numpy(x))
    grad = raw.grad.numpy() if isinstance(raw, SROutput) else None
    return sr_of(raw).numpy(), grad


def _levels(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.round(np.clip(a, 0, 1) * 255) - np.round(np.clip(b, 0, 1) * 255)).max())


SPECS = [
    ArchSpec("spsr", 4, nf=8, nb=2, gc=4),
    ArchSpec("spsr", 2, nf=8, nb=1, gc=4),
    ArchSpec("rrdb", 1, nf=8, nb=1, gc=4, extra={"pixel_unshuffle": True}),
    ArchSpec("rrdb", 3, nf=8, nb=1, gc=4),
    ArchSpec("edsr", 2, nf=8, nb=2),
    ArchSpec("srresnet", 4, nf=8, nb=2),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.arch}x{s.scale}")
def test_onnx_export_runs_within_one_level(tmp_path: Path, spec: ArchSpec) -> None:
    path = _weights(tmp_path, spec)
    out = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(1).random((2, 3, 20, 28), dtype=np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"lr": x})
    ref, _ = _reference(path, x)
    assert len(got) == 1 and got[0].shape == ref.shape == (2, 3, 20 * spec.scale, 28 * spec.scale)
    assert _levels(got[0], ref) <= 1
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["arch"])["arch"] == spec.arch and meta["scale"] == str(spec.scale)
    assert json.loads(meta["provenance"])["provenance"] == {"note": "export test"}
    assert meta["outputs"] == "sr" and meta["source"] == path.name


def test_gradient_output_and_fixed_size_as_openvino_ir(tmp_path: Path) -> None:
    ov = pytest.importorskip("openvino")
    spec = ArchSpec("spsr", 4, nf=8, nb=2, gc=4)
    path = _weights(tmp_path, spec)
    out = tmp_path / "out dir" / "spsr g.xml"
    out.parent.mkdir()
    result = runner.invoke(app, ["export", str(path), "-o", str(out), "--gradient", "--size", "24x32",
                                 "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["spsr g.bin", "spsr g.xml"]
    model = ov.Core().read_model(str(out))
    assert [tuple(model.inputs[0].get_partial_shape().to_shape())] == [(1, 3, 24, 32)]
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    x = np.random.default_rng(2).random((1, 3, 24, 32), dtype=np.float32)
    res = compiled(x)
    sr, grad = res[0], res[1]
    ref_sr, ref_grad = _reference(path, x)
    assert ref_grad is not None
    assert _levels(sr, ref_sr) <= 1 and float(np.abs(grad - ref_grad).max()) < 2e-3
    from spsr.engines.convert import read_openvino_metadata

    meta = read_openvino_metadata(out)
    assert meta["outputs"] == "sr,grad" and json.loads(meta["arch"])["arch"] == "spsr"


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    plain = _weights(tmp_path, ArchSpec("rrdb", 4, nf=8, nb=1, gc=4))
    cases = [
        (["export", str(plain), "-o", str(tmp_path / "m.pt")], "unknown export format '.pt'"),
        (["export", str(plain), "-o", str(tmp_path / "m.onnx"), "--gradient"], "no gradient branch"),
        (["export", str(plain), "-o", str(tmp_path / "missing" / "m.onnx")], "does not exist"),
        (["export", str(plain), "-o", str(tmp_path / "m.onnx"), "--size", "0x5"], "--size"),
        (["export", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "m.onnx")], "nope.pth"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code != 0, args
        assert message in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [plain.name]
