"""experiments/render.py: the NSE cross-validation table and chart, the two-seed SPSR-G components
table and its Fig. 8 analogue panel."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def _render():
    spec = importlib.util.spec_from_file_location("experiments_render", REPO / "experiments" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("experiments_render", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _result(dataset: str, task: str, repeats: list[float], chance: float) -> dict:
    return {"dataset": dataset, "task": task, "accuracy": sum(repeats) / len(repeats),
            "samples": 10 * len(repeats), "chance": chance, "mean_negatives": 0.0,
            "std": 0.0 if len(repeats) < 2 else 0.01, "repeat_accuracies": repeats}


def test_table_and_chart_from_validation_files(tmp_path: Path) -> None:
    render = _render()
    runs = {
        "nse_p": [_result("Set5", "contrastive", [0.30, 0.32], 0.0005),
                  _result("Set5", "jigsaw", [0.50, 0.52], 1 / 24)],
        "nse_j": [_result("Set5", "contrastive", [0.01, 0.03], 0.0005),
                  _result("Set5", "jigsaw", [0.70], 1 / 24)],
        "nse_p_x": [_result("Set5", "contrastive", [0.20, 0.22], 0.0006)],
    }
    for stem, results in runs.items():
        (tmp_path / f"{stem}.json").write_text(json.dumps({"results": results}))
    table, png = render.render_nse(tmp_path)
    lines = table.read_text().splitlines()
    assert "| F_P (contrastive) | 31.00 ± 1.00 | 51.00 ± 1.00 |" in lines
    assert "| F_J (jigsaw) | 2.00 ± 1.00 | 70.00 |" in lines  # one repeat: no spread
    assert "| chance | 0.050 | 4.167 |" in lines
    assert "| cross | 21.00 ± 1.00 | 0.060 |" in lines and not any(r.startswith("| vertical") for r in lines)
    # Files without a protocol are the older 16-per-crop evaluation; 10 samples a repeat here.
    assert lines[-1] == ("Sampling: 16 targets / grids per crop. Samples per repeat: Set5 "
                         "contrastive 10, Set5 jigsaw 10.")
    for stem, results in runs.items():
        (tmp_path / f"{stem}.json").write_text(json.dumps({"protocol": "paper", "results": results}))
    note = render.render_nse(tmp_path)[0].read_text().splitlines()[-1]
    assert note.startswith("Sampling: one target per 200×200 crop, one 2×2 grid per 84×84 crop")
    with Image.open(png) as image:
        assert image.mode == "RGB" and image.width > 3 * 300
        assert len(image.getcolors(maxcolors=1 << 16) or ()) > 3  # bars drawn, not blank


def test_tick_labels_keep_the_steps_decimals() -> None:
    render = _render()
    assert [render._tick_label(v, 2.5) for v in (0, 2.5, 7.5)] == ["0.0", "2.5", "7.5"]
    assert render._tick_label(10, 5) == "10" and render._tick_label(0.25, 0.25) == "0.25"


def _seed(path: Path, seed: int, psnr: float, failed: bool = False) -> None:
    rows = [{"name": "ESRGAN", "mean": {"Set5": {"psnr": psnr, "gradmap_l1": 0.05}}},
            {"name": "SPSR-G", "mean": {} if failed else {"Set5": {"psnr": psnr + 1, "gradmap_l1": 0.04}}}]
    path.mkdir(parents=True)
    (path / "ablation.json").write_text(json.dumps(
        {"datasets": ["Set5"], "metrics": ["psnr", "gradmap_l1"], "overrides": {"run.seed": seed}, "rows": rows}))


def test_the_table_gives_the_mean_and_each_seed(tmp_path: Path) -> None:
    _seed(tmp_path / "seed0", 0, 28.0)
    _seed(tmp_path / "seed1", 1, 29.0, failed=True)
    text = _render().render_g(tmp_path).read_text()
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
    panel = _render().fig8_panel(tmp_path, crop=16, zoom=2)
    assert panel.size == (3 * 32 + 4 * 6, 2 * 32 + 2 * 26 + 3 * 6)
    tile = np.asarray(panel)[6 + 26:6 + 26 + 32, 6:6 + 32]
    assert tile.std() > 0  # the window with the texture, not the flat black
