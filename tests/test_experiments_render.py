"""experiments/render.py: the two-seed SPSR-G components table and the Fig. 8 analogue panel."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

_SPEC = importlib.util.spec_from_file_location(
    "render", Path(__file__).resolve().parent.parent / "experiments" / "render.py")
assert _SPEC is not None and _SPEC.loader is not None
render = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("render", render)  # dataclasses look their module up there
_SPEC.loader.exec_module(render)


def _seed(path: Path, seed: int, psnr: float, failed: bool = False) -> None:
    rows = [{"name": "ESRGAN", "mean": {"Set5": {"psnr": psnr, "gradmap_l1": 0.05}}},
            {"name": "SPSR-G", "mean": {} if failed else {"Set5": {"psnr": psnr + 1, "gradmap_l1": 0.04}}}]
    path.mkdir(parents=True)
    (path / "ablation.json").write_text(json.dumps(
        {"datasets": ["Set5"], "metrics": ["psnr", "gradmap_l1"], "overrides": {"run.seed": seed}, "rows": rows}))


def test_the_table_gives_the_mean_and_each_seed(tmp_path: Path) -> None:
    _seed(tmp_path / "seed0", 0, 28.0)
    _seed(tmp_path / "seed1", 1, 29.0, failed=True)
    text = render.render_g(tmp_path).read_text()
    lines = text.splitlines()
    assert lines[0] == "| Method | Set5 PSNR ↑ | Set5 GradMap L1 ↓ |"
    assert lines[2] == "| ESRGAN | 28.50 (28.00 / 29.00) | 0.0500 (0.0500 / 0.0500) |"
    assert lines[3] == "| SPSR-G | – | – |"  # a row missing in one seed is not averaged over the other
    assert "Mean over 2 seeds (0, 1)" in text


def test_the_panel_crops_where_the_hr_gradients_are(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64, 3), np.uint8)
    img[40:60, 8:28] = rng.integers(0, 255, (20, 20, 3))  # all the structure is here
    folders = {"Set14": "zebra.png", "sr/esrgan/Set14": "zebra.png", "sr/spsr-g/Set14": "zebra.png",
               "grad/hr": "zebra_grad.png", "grad/esrgan/Set14": "zebra_grad.png",
               "grad/spsr-g/Set14": "zebra_grad.png"}
    for folder, name in folders.items():
        (tmp_path / folder).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / folder / name)
    panel = render.fig8_panel(tmp_path, crop=16, zoom=2)
    assert panel.size == (3 * 32 + 4 * 6, 2 * 32 + 2 * 26 + 3 * 6)
    tile = np.asarray(panel)[6 + 26:6 + 26 + 32, 6:6 + 32]
    assert tile.std() > 0  # the window with the texture, not the flat black
