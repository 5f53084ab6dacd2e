"""Model files from the command line, without the internet: ``spsr fetch`` from a local mirror,
``eval --offline`` listing every missing file, ``ablate --dry-run`` marking rows whose weights are
missing, and training's preflight failing before the run folder exists."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from _train_fixtures import make_store, one_thread  # noqa: F401 (autouse fixture)
from skimage import data as skdata
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr.weights import SPECS
from spsr_cli.app import app

RUNNER = CliRunner()
BODY = b"not really AlexNet, served from 127.0.0.1 " * 500


def _run(*args: object, env: dict[str, str] | None = None):
    return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture()
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "spsr"))
    return tmp_path


@pytest.fixture()
def mirror(tmp_path: Path) -> Iterator[str]:
    """A local mirror serving one file under AlexNet's name (stopped at the end of the test)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != "/" + SPECS["alexnet"].filename:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_fetch_downloads_from_a_mirror_and_lists_status(
    caches: Path, mirror: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    monkeypatch.setitem(SPECS, "alexnet", replace(SPECS["alexnet"], digest_kind="sha256", digest=digest))
    r = _run("fetch", "lpips", "--list", "--json")
    assert r.exit_code == 0
    (record,) = json.loads(r.stdout)
    assert record["status"] == "missing" and record["needed_by"] == ["metric lpips"]

    r = _run("fetch", "lpips", "--json")  # offline (the suite's SPSR_OFFLINE=1): nothing fetched
    assert r.exit_code == 1 and "offline" in r.output
    monkeypatch.delenv("SPSR_OFFLINE")
    monkeypatch.setenv("SPSR_DOWNLOAD_MIRROR", mirror)
    r = _run("fetch", "lpips", "--offline")
    assert r.exit_code == 1 and f"{mirror}/alexnet-owt-7be5be79.pth" in _flat(r.output)

    r = _run("fetch", "lpips", "--json")
    assert r.exit_code == 0, r.output
    (record,) = json.loads(r.stdout)
    cached = caches / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert record["status"] == "ok" and record["path"] == str(cached) and cached.read_bytes() == BODY
    assert f"fetched AlexNet ImageNet weights from {mirror}" in _flat(r.output)

    r = _run("fetch", "nonsense")
    assert r.exit_code == 1 and "unknown name 'nonsense'" in r.output


def test_eval_offline_lists_every_missing_file_with_its_option(caches: Path) -> None:
    hr = caches / "Tiny" / "HR"
    hr.mkdir(parents=True)
    write_image(hr / "a.png", np.ascontiguousarray(skdata.astronaut()[:48, :48]))
    r = _run("eval", "--model", "bicubic", "--metrics", "psnr,lpips,pi", "--offline", hr)
    assert r.exit_code == 1
    text = _flat(r.output)
    assert "2 model files missing" in text and "Traceback" not in text
    assert "alexnet-owt-7be5be79.pth" in text and "--lpips-backbone PATH" in text
    assert str(caches / "spsr" / "nrqm" / "model.mat") in text and "--ma-model PATH" in text
    mat = caches / "model.mat"
    mat.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    r = _run("eval", "--model", "bicubic", "--metrics", "lpips", "--lpips-backbone", mat, hr)
    assert r.exit_code == 1
    assert "is a MATLAB .mat file, not torchvision's AlexNet weights" in _flat(r.output)
    assert "weights_only" not in r.output


def test_ablate_dry_run_marks_rows_whose_weights_are_missing(
    caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("ablate", "--preset", "g-components", "-o", caches / "abl", "--dry-run", "--json")
    plan = json.loads(_run(*args).stdout)
    trains = [row for row in plan["rows"] if row["action"] == "train"]
    assert trains and all(row["weights_missing"] == ["vgg19-dcbb9e9d.pth (the VGG19 perceptual loss)"]
                          for row in trains)
    assert plan["metrics_weights_missing"] == ["alexnet-owt-7be5be79.pth (metric lpips)"]
    vgg = caches / "vgg.pth"
    vgg.write_bytes(b"PK\x03\x04 given by path")  # an explicit path is used as given
    plan = json.loads(_run(*args, "--vgg-weights", vgg).stdout)
    assert all(row["weights_missing"] == [] for row in plan["rows"])
    assert not (caches / "abl").exists()


def test_training_preflight_fails_before_the_run_folder_exists(caches: Path) -> None:
    store = make_store(caches / "data", n_images=1, size=48, val=0)
    run = caches / "run"
    r = _run("train", store, "--variant", "g", "-o", run, "--iterations", 1, "--nf", 8, "--nb", 1,
             "--set", "model.gc=4", "--batch-size", 1, "--workers", 0, "--device", "cpu", "--quiet")
    assert r.exit_code == 1
    text = _flat(r.output)
    assert "vgg19-dcbb9e9d.pth" in text and "--vgg-weights PATH" in text and "offline" in text
    assert not run.exists()


def test_the_download_bar_renders_on_a_terminal(
    caches: Path, mirror: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    from spsr.weights import ensure_file, spec
    from spsr_cli import _common

    digest = hashlib.sha256(BODY).hexdigest()
    monkeypatch.setitem(SPECS, "alexnet", replace(SPECS["alexnet"], digest_kind="sha256", digest=digest))
    monkeypatch.delenv("SPSR_OFFLINE")
    monkeypatch.setenv("SPSR_DOWNLOAD_MIRROR", mirror)
    screen = io.StringIO()
    monkeypatch.setattr(_common, "err_console", Console(file=screen, force_terminal=True, width=100))
    with _common.model_fetching():
        path = ensure_file(spec("alexnet"))
    assert path.read_bytes() == BODY
    shown = screen.getvalue()
    assert "fetching alexnet-owt-7be5be79.pth" in shown  # the bar's label
    assert f"fetched AlexNet ImageNet weights from {mirror}" in _flat(shown)
