"""``spsr upscale``'s warm start: a second run of a converted model never imports PyTorch and
writes the same files as the full run; a changed weights file or ``--engine torch`` takes the full
path. Each run is a process of its own (the engines never load into the test runner)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _hang_guard import HANG_GUARD_S

from spsr.data.image_io import read_image, write_image

#: Runs the CLI and says on stderr whether PyTorch was imported by the end.
SCRIPT = """import sys
from spsr_cli.app import main
sys.argv = ["spsr", *sys.argv[1:]]
try:
    main()
finally:
    print("TORCH-LOADED" if "torch" in sys.modules else "TORCH-FREE", file=sys.stderr)
"""


def _spsr(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPSR_CACHE": str(cache), "COLUMNS": "200"}
    env.pop("SPSR_ENGINE", None)
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, env=env,
                          timeout=HANG_GUARD_S, check=False)


def _images(folder: Path) -> None:
    rng = np.random.default_rng(3)
    folder.mkdir()
    write_image(folder / "rgb.png", rng.integers(0, 256, (20, 27, 3), dtype=np.uint8))
    write_image(folder / "gray.png", rng.integers(0, 256, (18, 22, 1), dtype=np.uint8))
    rgba = rng.integers(0, 256, (19, 23, 4), dtype=np.uint8)
    rgba[:, :6, 3] = 0
    write_image(folder / "rgba.png", rgba)


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    """Each output's pixels, with its alpha as a last channel where it has one."""
    out = {}
    for p in sorted(folder.iterdir()):
        image = read_image(p)
        extra = [] if image.alpha is None else [image.alpha[:, :, None]]
        out[p.name] = np.concatenate([image.pixels, *extra], axis=2)
    return out


#: The engine the CLI test runs (the first installed); both engines' warm runners are compared
#: with the full path in tests/engines/native_runtimes/test_warm_start.py.
ENGINE = next((e for e in ("openvino", "onnxruntime") if importlib.util.find_spec(e) is not None), None)


@pytest.mark.skipif(ENGINE is None, reason="neither openvino nor onnxruntime is installed")
def test_second_run_skips_pytorch_and_writes_the_same_images(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    weights = tmp_path / "w.safetensors"
    shutil.copy(tiny_spsr_weights, weights)
    _images(tmp_path / "in")
    cache = tmp_path / "cache"
    common = ["--weights", str(weights), "--engine", str(ENGINE), "--precision", "fp32", "--tile", "16"]

    def upscale(out: str) -> subprocess.CompletedProcess[str]:
        run = _spsr("upscale", str(tmp_path / "in"), str(tmp_path / out), *common, cache=cache)
        assert run.returncode == 0, run.stderr
        return run

    full = upscale("full")
    assert "TORCH-LOADED" in full.stderr and f"{ENGINE} fp32" in full.stderr
    assert len(list((cache / "engines" / "warm").glob("*.json"))) == 1
    warm = upscale("warm")
    assert "TORCH-FREE" in warm.stderr
    line = [ln for ln in full.stderr.splitlines() if ln.startswith("model:")]
    assert line and line == [ln for ln in warm.stderr.splitlines() if ln.startswith("model:")]
    a, b = _outputs(tmp_path / "full"), _outputs(tmp_path / "warm")
    assert sorted(a) == sorted(b) == ["gray.png", "rgb.png", "rgba.png"]
    for name in ("gray.png", "rgb.png"):
        np.testing.assert_array_equal(a[name], b[name])
    # alpha is resampled by the NumPy MATLAB bicubic in the warm start, by PyTorch's in the full run
    assert np.abs(a["rgba.png"].astype(int) - b["rgba.png"].astype(int)).max() <= 1

    # A replaced weights file (same bytes, a new file) is loaded again by PyTorch.
    shutil.copy(tiny_spsr_weights, tmp_path / "new.safetensors")
    os.replace(tmp_path / "new.safetensors", weights)
    assert "TORCH-LOADED" in upscale("again").stderr


def test_a_run_on_pytorch_removes_the_record(tmp_path: Path, tiny_spsr_weights: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from spsr.api import Upscaler
    from spsr.lite.warm import WarmRecord, WarmRequest, remember
    from spsr_cli.cmd_upscale import UpscaleSettings

    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))
    request = WarmRequest(str(tiny_spsr_weights), "auto", "fp32", 16, 4, 4, None, "cpu")
    settings = UpscaleSettings(request, engine_retune=False)
    path = remember(request, WarmRecord("openvino", "1", "fp32", 2, 4, "m", str(tiny_spsr_weights), [0, 0, 0],
                                        str(tmp_path / "model.xml")))
    assert path is not None and path.exists()
    up = Upscaler(str(tiny_spsr_weights), engine="torch", precision="fp32", tile=16, device="cpu", tile_overlap=4)
    up(np.zeros((12, 10, 3), np.uint8))
    assert up.warm_record() is None and settings.finish(up) is None
    assert not path.exists()  # PyTorch ran this request: no warm start may run another engine
