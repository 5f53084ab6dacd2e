"""The warm-start record: written and read back, keyed by the request and the machine, and
refused (with the reason) whenever the weights, the conversion, spsr or the request changed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import spsr
from spsr.lite import warm
from spsr.lite.warm import WarmRecord, WarmRequest, lookup, remember


@pytest.fixture()
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[WarmRequest, WarmRecord]:
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(warm, "GPU_NODES", ())
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"weights")
    conv = tmp_path / "cache" / "engines" / "openvino" / "k"
    conv.mkdir(parents=True)
    (conv / "model.xml").write_text("<xml/>")
    (conv / "model.bin").write_bytes(b"\0" * 64)
    request = WarmRequest(str(weights), "auto", "auto", 256, 16, 4, None, "auto")
    record = WarmRecord.of_conversion(engine="openvino", engine_version="1.0", precision="fp32", threads=2,
                                      scale=4, model="SPSR-G x4", weights_file=weights,
                                      converted=conv / "model.xml")
    return request, record


def test_a_record_round_trips(setup: tuple[WarmRequest, WarmRecord]) -> None:
    request, record = setup
    assert lookup(request) == (None, "no record of an earlier run")
    path = remember(request, record)
    assert path == request.path() and path.parent.name == "warm"
    assert lookup(request) == (record, "recorded by an earlier run")
    assert sorted(Path(p).name for p in record.files) == ["model.bin", "model.xml"]
    assert remember(request, None) is None and not path.exists()  # a run on PyTorch removes it


def test_every_part_of_the_request_is_in_the_key(setup: tuple[WarmRequest, WarmRecord],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    request, _ = setup
    others = [replace(request, engine="openvino"), replace(request, precision="fp32"), replace(request, tile=128),
              replace(request, overlap=8), replace(request, batch=1), replace(request, model_scale=4),
              replace(request, device="cpu"), replace(request, weights="default")]
    keys = {request.key(), *(o.key() for o in others)}
    assert len(keys) == len(others) + 1
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # a variable that changes the kernels
    assert request.key() not in keys
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(spsr, "__version__", "9.9")
    assert request.key() not in keys


def test_changed_weights_or_conversion_go_back_to_the_full_path(setup: tuple[WarmRequest, WarmRecord]) -> None:
    request, record = setup
    remember(request, record)
    Path(record.weights_file).write_bytes(b"retrained")  # another size
    assert lookup(request)[0] is None and "changed" in lookup(request)[1]
    remember(request, replace(record, weights_stat=warm.stat_of(Path(record.weights_file))))
    assert lookup(request)[0] is not None
    xml = Path(record.converted)
    xml.write_text("<xml>truncated")
    assert lookup(request) == (None, f"{xml} changed")
    xml.unlink()
    assert lookup(request)[0] is None and "No such file" in lookup(request)[1]


def test_damaged_or_foreign_records_are_ignored(setup: tuple[WarmRequest, WarmRecord]) -> None:
    request, record = setup
    path = remember(request, record)
    assert path is not None
    for text in ("{", "[1, 2]", json.dumps({"format": 99}), "[" * 100_000 + "]" * 100_000,
                 json.dumps({**json.loads(path.read_text()), "engine": "tensorrt"}),
                 json.dumps({**json.loads(path.read_text()), "scale": 99}), " " * (warm.MAX_RECORD_BYTES + 1)):
        path.write_text(text)
        found, why = lookup(request)
        assert found is None and why.startswith("unreadable record"), why
    path.write_text(json.dumps({**json.loads(json.dumps(record.__dict__)), "spsr": "0.0.1"}))
    assert lookup(request) == (None, "recorded by another spsr version")


def test_requests_that_cannot_start_warm(setup: tuple[WarmRequest, WarmRecord], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    request, record = setup
    remember(request, record)
    assert lookup(replace(request, engine="torch"))[1] == "--engine torch"
    assert lookup(replace(request, device="cuda:0"))[1] == "--device cuda:0"
    node = tmp_path / "nvidiactl"
    node.touch()
    monkeypatch.setattr(warm, "GPU_NODES", (str(node),))
    assert lookup(request)[1] == "a GPU may be present (only PyTorch can tell)"
    remember(replace(request, device="cpu"), record)
    assert lookup(replace(request, device="cpu"))[0] == record  # --device cpu: a GPU does not matter


def test_an_unwritable_cache_only_costs_the_warm_start(setup: tuple[WarmRequest, WarmRecord],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from spsr import atomic

    request, record = setup

    def read_only(path: object, text: str, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(atomic, "write_text_atomic", read_only)  # as a read-only cache folder fails
    assert remember(request, record) is None and not request.path().exists()
