"""experiments/render.py: the NSE cross-validation table and chart from validation JSONs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]


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
    with Image.open(png) as image:
        assert image.mode == "RGB" and image.width > 3 * 300
        assert len(image.getcolors(maxcolors=1 << 16) or ()) > 3  # bars drawn, not blank


def test_tick_labels_keep_the_steps_decimals() -> None:
    render = _render()
    assert [render._tick_label(v, 2.5) for v in (0, 2.5, 7.5)] == ["0.0", "2.5", "7.5"]
    assert render._tick_label(10, 5) == "10" and render._tick_label(0.25, 0.25) == "0.25"
