"""The model-file download path without the internet: a bounded HTTP server on 127.0.0.1 serves small
files; digests, interrupted and resumed transfers, servers without Range support, offline mode,
corrupt cached files, every missing file in one error, and files of the wrong kind."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from _hang_guard import HANG_GUARD_S

from spsr.errors import CheckpointError, MissingWeightsError
from spsr.metrics.registry import metric_needs
from spsr.train.needs import needs_for, training_needs
from spsr.weights import (
    SPECS,
    FileSpec,
    MissingFilesError,
    Need,
    ensure_file,
    ensure_files,
    fetch_settings,
    file_digest,
)
from spsr.weights.kinds import load_torch_state, sniff

PAYLOAD = bytes(range(256)) * 1200  # 300 KiB
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Behaviour:
    """What the test server does; requests are recorded as (path, Range header or None)."""

    files: dict[str, bytes] = field(default_factory=dict)
    truncate: int = 0  # this many requests send half the body, then close the connection
    ranges: bool = True  # honour Range requests (206); False: always the whole file (200)
    requests: list[tuple[str, str | None]] = field(default_factory=list)


@pytest.fixture()
def server() -> Iterator[tuple[str, Behaviour]]:
    """An HTTP server on 127.0.0.1 in a thread, stopped at the end of the test."""
    behaviour = Behaviour()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # silence
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            behaviour.requests.append((self.path, rng))
            body = behaviour.files.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            if rng and behaviour.ranges and rng.startswith("bytes="):
                start = int(rng[len("bytes="):].split("-")[0])
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            part = body[start:]
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            if behaviour.truncate > 0:
                behaviour.truncate -= 1
                self.wfile.write(part[: len(part) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(part)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", behaviour
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPSR_OFFLINE", raising=False)


def _spec(base: str, cache: Path, name: str = "model.bin", kind: str = "sha256",
          digest: str = PAYLOAD_SHA256) -> FileSpec:
    return FileSpec("test", "the test file", f"{base}/{name}", name, kind, digest, lambda: cache)


def _settings(**kw: object):
    events: dict[str, list] = {"progress": [], "notes": []}
    kw.setdefault("on_progress", lambda spec, done, total: events["progress"].append((done, total)))
    kw.setdefault("on_note", events["notes"].append)
    kw.setdefault("timeout", 5.0)
    return events, kw


def test_git_blob_and_sha256_digests_are_the_ones_git_and_sha256sum_give(tmp_path: Path) -> None:
    hello = tmp_path / "hello"
    hello.write_bytes(b"hello world\n")
    assert file_digest(hello, "git-blob-sha1") == "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_digest(empty, "git-blob-sha1") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert file_digest(hello, "sha256") == (
        "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
    )


def test_download_verifies_renames_and_reports(server, online, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    spec = _spec(base, tmp_path / "cache")
    events, kw = _settings()
    with fetch_settings(**kw):
        path = ensure_file(spec)
    assert path == tmp_path / "cache" / "model.bin" and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.bin", "model.bin.lock"]
    assert events["progress"][0] == (0, len(PAYLOAD)) and events["progress"][-1] == (len(PAYLOAD),) * 2
    assert len(events["notes"]) == 1 and f"{base}/model.bin" in events["notes"][0]
    assert str(path) in events["notes"][0]
    with fetch_settings(**kw):
        assert ensure_file(spec) == path  # cached and verified: no second request
    assert len(behaviour.requests) == 1


def test_sha256_prefix_is_torchvisions_convention(server, online, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.files["net-abc.pth"] = PAYLOAD
    good = _spec(base, tmp_path / "a", "net-abc.pth", "sha256-prefix", PAYLOAD_SHA256[:8])
    assert ensure_file(good).read_bytes() == PAYLOAD
    bad = _spec(base, tmp_path / "b", "net-abc.pth", "sha256-prefix", "00000000")
    with pytest.raises(MissingFilesError, match="does not match its sha256-prefix digest 00000000"):
        ensure_file(bad)
    assert not any((tmp_path / "b").glob("net-abc.pth*[!k]"))  # neither the file nor a .part


def test_digest_mismatch_never_leaves_a_file(server, online, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD[:-1] + b"X"
    spec = _spec(base, tmp_path / "cache")
    with pytest.raises(MissingFilesError) as info:
        ensure_file(Need(spec, None, "--model-file PATH", "the test"))
    line = " ".join(str(info.value).split())
    assert f"download {base}/model.bin to {tmp_path / 'cache' / 'model.bin'}" in line
    assert "or pass --model-file PATH" in line and "does not match" in line
    assert not (tmp_path / "cache" / "model.bin").exists()
    assert not (tmp_path / "cache" / "model.bin.part").exists()


def test_interrupted_download_resumes_with_a_range_request(server, online, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    behaviour.truncate = 1
    path = ensure_file(_spec(base, tmp_path / "cache"))
    assert path.read_bytes() == PAYLOAD
    assert [r for _, r in behaviour.requests] == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_server_without_range_support_restarts_from_zero(server, online, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    behaviour.truncate, behaviour.ranges = 1, False
    path = ensure_file(_spec(base, tmp_path / "cache"))
    assert path.read_bytes() == PAYLOAD and len(behaviour.requests) == 2


def test_a_connection_that_keeps_dropping_fails_and_a_later_call_resumes(
    server, online, tmp_path: Path
) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    behaviour.truncate = 10
    spec = _spec(base, tmp_path / "cache")
    with fetch_settings(attempts=2), pytest.raises(MissingFilesError, match="connection closed"):
        ensure_file(spec)
    part = tmp_path / "cache" / "model.bin.part"
    assert not spec.cache_path.exists() and 0 < part.stat().st_size < len(PAYLOAD)  # clean prefix
    behaviour.truncate = 0
    done, have = len(behaviour.requests), part.stat().st_size
    assert ensure_file(spec).read_bytes() == PAYLOAD
    assert behaviour.requests[done:] == [("/model.bin", f"bytes={have}-")]
    assert not part.exists()


def test_a_stale_part_of_another_file_is_discarded_and_fetched_fresh(
    server, online, tmp_path: Path
) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "model.bin.part").write_bytes(b"garbage of another file")
    assert ensure_file(_spec(base, tmp_path / "cache")).read_bytes() == PAYLOAD
    assert [r is None for _, r in behaviour.requests] == [False, True]  # resume, then fresh


def test_corrupt_cached_file_is_fetched_again_never_used(server, online, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    spec = _spec(base, tmp_path / "cache")
    spec.cache_path.parent.mkdir()
    spec.cache_path.write_bytes(PAYLOAD[: len(PAYLOAD) // 3])  # a partial file under the final name
    events, kw = _settings()
    with fetch_settings(**kw):
        assert ensure_file(spec).read_bytes() == PAYLOAD
    assert "does not match its digest" in events["notes"][0] and len(behaviour.requests) == 1


def test_offline_makes_no_request_and_says_how_to_get_the_file(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    spec = _spec(base, tmp_path / "cache")
    with pytest.raises(MissingFilesError, match="offline") as info:  # SPSR_OFFLINE=1 (conftest)
        ensure_file(spec)
    assert f"{base}/model.bin" in str(info.value) and str(spec.cache_path) in str(info.value)
    monkeypatch.delenv("SPSR_OFFLINE")
    with fetch_settings(offline=True), pytest.raises(MissingFilesError, match="offline"):
        ensure_file(spec)
    spec.cache_path.parent.mkdir()
    spec.cache_path.write_bytes(b"broken")
    with fetch_settings(offline=True), pytest.raises(MissingFilesError, match="cached copy is corrupt"):
        ensure_file(spec)
    assert behaviour.requests == []


def test_http_errors_and_explicit_paths(server, online, tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(MissingFilesError, match="HTTP 404"):
        ensure_file(_spec(base, tmp_path / "cache", "absent.bin"))
    mine = tmp_path / "mine.bin"
    mine.write_bytes(b"my own variant")  # explicit paths are used as given, not digest-checked
    assert ensure_file(Need(_spec(base, tmp_path / "c"), str(mine))) == mine
    with pytest.raises(MissingWeightsError, match=r"not found: .*nope\.bin .given with --x"):
        ensure_file(Need(_spec(base, tmp_path / "c"), str(tmp_path / "nope.bin"), "--x PATH"))


def test_mirror_environment_variable_replaces_the_source(
    server, online, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    spec = FileSpec("t", "t", "https://example.invalid/x/model.bin", "model.bin", "sha256",
                    PAYLOAD_SHA256, lambda: tmp_path / "cache")
    monkeypatch.setenv("SPSR_DOWNLOAD_MIRROR", base + "/")
    assert spec.source_url == f"{base}/model.bin"
    assert ensure_file(spec).read_bytes() == PAYLOAD


def test_every_missing_file_of_a_metric_list_is_reported_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "spsr"))
    needs = metric_needs(["psnr", "lpips", "ma", "pi"])
    assert [(n.spec.key, n.option) for n in needs] == [
        ("alexnet", "--lpips-backbone PATH"), ("ma-model", "--ma-model PATH"),
        ("ma-model", "--ma-model PATH"),
    ]
    with pytest.raises(MissingFilesError) as info:
        ensure_files(needs)
    assert len(info.value.lines) == 2  # Ma's file once, though two metrics need it
    text = " ".join(str(info.value).split())
    assert "--lpips-backbone PATH" in text and "--ma-model PATH" in text
    assert str(tmp_path / "spsr" / "nrqm" / "model.mat") in text
    assert "https://raw.githubusercontent.com/chaoma99/sr-metric/master/model.mat" in text


def test_catalog_urls_are_torchvisions_and_needs_follow_the_configuration() -> None:
    from torchvision.models import AlexNet_Weights, ResNet18_Weights, VGG19_Weights

    from spsr.train.variants import preset

    assert SPECS["alexnet"].url == AlexNet_Weights.IMAGENET1K_V1.url
    assert SPECS["vgg19"].url == VGG19_Weights.IMAGENET1K_V1.url
    assert SPECS["resnet18"].url == ResNet18_Weights.IMAGENET1K_V1.url
    assert SPECS["alexnet"].digest == "7be5be79" and SPECS["vgg19"].digest == "dcbb9e9d"
    assert SPECS["ma-model"].digest == "a852aefb6a49e52703044fee4fa60c3f5b8d5adc"
    assert [n.spec.key for n in training_needs(preset("g"))] == ["vgg19"]
    assert [n.spec.key for n in training_needs(preset("u"))] == ["alexnet"]
    assert [n.spec.key for n in training_needs(preset("resnet"))] == ["vgg19", "resnet18"]
    assert training_needs(preset("psnr")) == []
    cfg = preset("g")
    cfg.loss.perceptual_net = "none"
    assert training_needs(cfg) == []
    cfg.loss.perceptual_net, cfg.loss.vgg_weights = "vgg", "/my/vgg.pth"
    assert training_needs(cfg)[0].explicit == "/my/vgg.pth"
    assert {n.spec.key for n in needs_for(["lpips", "pi", "u"])} == {"alexnet", "ma-model"}
    with pytest.raises(Exception, match="unknown name 'nonsense'"):
        needs_for(["nonsense"])


def test_files_of_the_wrong_kind_get_their_own_line(tmp_path: Path) -> None:
    from spsr.losses.lpips_net import load_lpips_alex
    from spsr.metrics import load_ma_model

    mat = tmp_path / "model.mat"
    scipy.io.savemat(mat, {"model": np.zeros(3)})
    assert sniff(mat) == "mat"
    with pytest.raises(CheckpointError, match=r"is a MATLAB \.mat file, not torchvision's AlexNet"):
        load_lpips_alex(mat)
    pth = tmp_path / "alex.pth"
    torch.save({"w": torch.zeros(1)}, pth)
    assert sniff(pth) == "torch"
    with pytest.raises(CheckpointError, match=r"is a PyTorch file, not Ma et al\.'s model\.mat"):
        load_ma_model(pth)
    torch.save({"w": Behaviour()}, pth)  # a pickled object: PyTorch would advise weights_only=False
    with pytest.raises(CheckpointError, match="pickled Python objects") as info:
        load_torch_state(pth, "torchvision's AlexNet weights")
    assert "weights_only" not in str(info.value)


def test_a_complete_part_left_before_the_rename_is_verified_and_used(
    server, online, tmp_path: Path
) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "model.bin.part").write_bytes(PAYLOAD)  # a crash between write and rename
    assert ensure_file(_spec(base, tmp_path / "cache")).read_bytes() == PAYLOAD
    assert behaviour.requests == [("/model.bin", f"bytes={len(PAYLOAD)}-")]  # answered 416


def test_two_concurrent_fetches_of_one_file_download_it_once(server, online, tmp_path: Path) -> None:
    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    spec = _spec(base, tmp_path / "cache")
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_file(spec))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=HANG_GUARD_S)  # a hang guard only
    assert results == [spec.cache_path] * 2 and spec.cache_path.read_bytes() == PAYLOAD
    assert len(behaviour.requests) == 1


def test_a_stage_declares_its_own_files_and_the_catalog_lists_only_files() -> None:
    """Training needs come from the stage class (``Stage.needs``), not from a table of stage names
    in the weights catalog: a stage registered at run time is asked too."""
    import spsr.weights.catalog as catalog
    from spsr.train.stage import Stage
    from spsr.train.variants import _STAGES, register_stage

    class Probe(Stage):
        @classmethod
        def needs(cls, cfg):  # type: ignore[no-untyped-def]
            return [Need(SPECS["resnet18"], None, "--probe-weights PATH", "the probe")]

    register_stage("probe-needs", Probe)
    try:
        cfg = preset_for_stage("probe-needs")
        assert [(n.spec.key, n.option) for n in training_needs(cfg)] == [("resnet18", "--probe-weights PATH")]
    finally:
        _STAGES.pop("probe-needs")
    assert not hasattr(catalog, "training_needs") and not hasattr(catalog, "metric_needs")


def preset_for_stage(stage: str):  # type: ignore[no-untyped-def]
    from spsr.train.config import TrainConfig

    return TrainConfig(stage=stage, variant="probe")


def test_a_full_cache_stops_the_fetch_at_once_naming_the_file(
    server, online, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from spsr.errors import WriteError
    from spsr.weights import fetch as fetch_module

    base, behaviour = server
    behaviour.files["model.bin"] = PAYLOAD
    spec = _spec(base, tmp_path / "cache")
    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(path, mode, *args, **kwargs)
        if str(path).endswith(".part"):
            def write(_data: bytes) -> int:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            handle.write = write  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(fetch_module, "open", full_disk_open, raising=False)
    with pytest.raises(WriteError, match=r"cannot write .*model\.bin\.part: no space left on device"):
        ensure_file(spec)
    assert len(behaviour.requests) == 1  # not retried: every try would fail the same way
    assert not spec.cache_path.exists()
