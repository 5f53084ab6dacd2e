"""The Python API (``spsr.Upscaler``): arrays and PIL images kept as ``spsr upscale`` keeps
them, files, the gradient branch, and ``import spsr`` without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spsr.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def up(tiny_spsr_weights: Path):  # type: ignore[no-untyped-def]
    from spsr import Upscaler

    return Upscaler(str(tiny_spsr_weights), engine="torch", precision="fp32", tile=16, device="cpu",
                    tile_overlap=4)


def test_import_spsr_is_cheap_and_upscaler_is_lazy() -> None:
    code = ("import sys; import spsr; assert 'torch' not in sys.modules, 'torch imported';"
            "from spsr import Upscaler; assert Upscaler.__name__ == 'Upscaler'; "
            "import spsr.api; assert spsr.Upscaler is spsr.api.Upscaler")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    import spsr

    with pytest.raises(AttributeError, match="no attribute 'Upscalerr'"):
        spsr.Upscalerr  # noqa: B018


def test_arrays_keep_dtype_and_channels(up, astronaut: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    from spsr.data.image_io import LoadedImage
    from spsr.infer.upscale import upscale_loaded

    rgb = np.ascontiguousarray(astronaut[100:120, 200:224])
    out = up(rgb)
    assert out.dtype == np.uint8 and out.shape == (80, 96, 3)
    # The same as what spsr upscale computes for a decoded file.
    ref = upscale_loaded(LoadedImage(rgb, None, None, Path("x.png")), up.tiled)
    assert np.array_equal(out, ref)
    assert up(rgb[:, :, 0]).shape == (80, 96)  # H×W stays H×W
    assert up(rgb[:, :, :1]).shape == (80, 96, 1)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])
    out4 = up(rgba)
    assert out4.shape == (80, 96, 4) and abs(int(out4[..., 3].mean()) - 200) <= 1
    deep = up(rgb.astype(np.uint16) * 257)
    assert deep.dtype == np.uint16 and deep.shape == (80, 96, 3)
    assert np.abs(deep.astype(int) // 257 - out.astype(int)).max() <= 1
    assert up(rgb, outscale=2).shape == (40, 48, 3)
    with pytest.raises(ConfigError, match="uint8 or uint16"):
        up(rgb.astype(np.float32))
    with pytest.raises(ConfigError, match="shape"):
        up(np.zeros((4, 4, 5), np.uint8))


def test_pil_images_come_back_as_pil(up, astronaut: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    rgb = np.ascontiguousarray(astronaut[100:120, 200:224])
    for mode in ("RGB", "RGBA", "L", "LA"):
        im = Image.fromarray(rgb).convert(mode)
        out = up(im)
        assert isinstance(out, Image.Image) and out.mode == mode and out.size == (96, 80)
    assert np.array_equal(np.asarray(up(Image.fromarray(rgb))), up(rgb))
    with pytest.raises(ConfigError, match="NumPy array or a PIL image"):
        up([[1, 2]])


def test_upscale_file_and_gradient(up, tmp_path: Path, astronaut: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    from spsr.data.image_io import read_image, write_image

    rgb = np.ascontiguousarray(astronaut[100:120, 200:224])
    write_image(tmp_path / "in put.png", rgb)
    dst = up.upscale_file(tmp_path / "in put.png", tmp_path / "out.png")
    assert np.array_equal(read_image(dst).pixels, up(rgb))
    sr, grad = up.with_gradient(rgb)
    assert np.array_equal(sr, up(rgb)) and grad.shape == (80, 96, 3) and grad.dtype == np.float32
    sr_pil, _ = up.with_gradient(Image.fromarray(rgb))
    assert isinstance(sr_pil, Image.Image)


def test_model_without_gradient_branch_and_bad_engine(tmp_path: Path) -> None:
    from spsr import Upscaler
    from spsr.archs import ArchSpec, build_model
    from spsr.infer import save_weights

    spec = ArchSpec("rrdb", 2, nf=8, nb=1, gc=4)
    save_weights(tmp_path / "r.safetensors", build_model(spec), spec)
    plain = Upscaler(str(tmp_path / "r.safetensors"), engine="torch", precision="fp32", device="cpu")
    assert plain.scale == 2 and plain(np.zeros((6, 5, 3), np.uint8)).shape == (12, 10, 3)
    assert "torch fp32" in plain.describe()
    with pytest.raises(ConfigError, match="no gradient branch"):
        plain.with_gradient(np.zeros((6, 5, 3), np.uint8))
    with pytest.raises(ConfigError, match="unknown engine"):
        Upscaler(str(tmp_path / "r.safetensors"), engine="tensorrt", device="cpu")
