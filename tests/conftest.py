"""Shared fixtures: tiny models saved to disk, the shared datasets folder, real images."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
# Run in a process of their own by tests/engines/test_native_runtimes.py
# (see tests/engines/native_runtimes/conftest.py).
collect_ignore = ["engines/native_runtimes"]
SHARED = REPO.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _no_network_fetches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the internet: model-file fetches are off (SPSR_OFFLINE=1, inherited by the
    CLI subprocesses) and no mirror is set; the download tests serve files from 127.0.0.1."""
    monkeypatch.setenv("SPSR_OFFLINE", "1")
    monkeypatch.delenv("SPSR_DOWNLOAD_MIRROR", raising=False)


@pytest.fixture(scope="session", autouse=True)
def _torch_engine_by_default() -> Iterator[None]:
    """CLI runs use PyTorch unless a test names an ``--engine``, for the whole session — module-
    and session-scoped fixtures included, which are set up before any function-scoped fixture.
    ``auto`` would measure and load OpenVINO and ONNX Runtime in the test runner's process (see
    :func:`pytest_runtest_makereport`) and write its choice into the user's cache;
    tests/engines/native_runtimes/ covers the engines in a process of their own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPSR_ENGINE", "torch")
        yield


#: Native runtimes that must never load into the test runner's process.
NATIVE_RUNTIMES = ("openvino", "onnxruntime")
_runtimes_seen: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Fail the test (setup, call or teardown) after which OpenVINO or ONNX Runtime is first found
    loaded in this process. Their thread pools and signal state made a later test of the same
    process crash with a segmentation fault (a training test raising SIGTERM at itself, 86 % into
    a single-process run of the suite); tests run them in subprocesses or in
    tests/engines/native_runtimes/ (a pytest process of its own)."""
    outcome = yield
    if "native_runtimes" in item.path.parts:  # that folder's own process is meant to load them
        return
    new = [m for m in NATIVE_RUNTIMES if m in sys.modules and m not in _runtimes_seen]
    if new:
        _runtimes_seen.update(new)
        report = outcome.get_result()  # type: ignore[attr-defined]
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} ({call.when}) loaded {', '.join(new)} into the test runner's process; "
                           "run it in a subprocess or under tests/engines/native_runtimes/")


@pytest.fixture(autouse=True)
def _no_asynchronous_dataloader_errors() -> Iterator[None]:
    """No test leaves PyTorch's SIGCHLD handler behind: a DataLoader with worker processes
    installs it once per process, and it then raises "DataLoader worker ... killed" in the main
    thread whenever any child process ends — in a later, unrelated test, possibly inside native
    code (it crashed the runner). The same removal as spsr's BatchStream
    (:func:`spsr.train.batches.drop_torch_sigchld_handler`)."""
    yield
    from spsr.train.batches import drop_torch_sigchld_handler

    drop_torch_sigchld_handler()


def trust_cached_file(monkeypatch: pytest.MonkeyPatch, key: str, path: Path) -> None:
    """Register ``path``'s SHA-256 as the digest of the model file ``key`` (``alexnet``, ``vgg19``,
    ``resnet18``, ``ma-model``), so a test's own small file in the cache counts as the real one."""
    from dataclasses import replace

    from spsr.weights import SPECS, file_digest

    digest = file_digest(path, "sha256")
    monkeypatch.setitem(SPECS, key, replace(SPECS[key], digest_kind="sha256", digest=digest))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/datasets, or skip the test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared datasets folder beside the repo), which is absent")
    return path


@pytest.fixture(scope="session")
def tiny_spsr_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny SPSR-G ×4 (nf 8, nb 2) saved as .safetensors."""
    from spsr.archs import ArchSpec, build_model
    from spsr.infer import save_weights

    torch.manual_seed(0)
    spec = ArchSpec("spsr", 4, nf=8, nb=2, gc=4)
    path = tmp_path_factory.mktemp("weights") / "tiny_spsr.safetensors"
    save_weights(path, build_model(spec), spec, {"note": "random tiny test model"})
    return path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real photo (scikit-image's astronaut, public domain), 512×512 RGB uint8."""
    from skimage import data

    return data.astronaut()


@pytest.fixture()
def set5_hr() -> Path:
    """Set5's HR images (skips when ../shared is absent)."""
    return shared_path("benchmark", "Set5", "HR")


@pytest.fixture()
def set14_hr() -> Path:
    """Set14's HR images (skips when ../shared is absent)."""
    return shared_path("benchmark", "Set14", "HR")
