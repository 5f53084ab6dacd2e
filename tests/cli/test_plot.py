"""``spsr plot``: curves of runs from their log.jsonl (Pillow), the resumed-run rule, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from spsr.train.curves import PALETTE, draw_curves, panel_tags, read_curves
from spsr_cli.app import app

RUNNER = CliRunner()


def _run_folder(root: Path, name: str, losses: list[float], resumed_at: int | None = None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    records = [{"kind": "start", "iteration": 0}]
    for i, loss in enumerate(losses, start=1):
        records.append({"kind": "train", "iteration": i * 10, "g/pixel": loss, "lr/G": 1e-4,
                        "it_per_s": 2.0, "eta_s": 1.0})
        if i % 2 == 0:
            records.append({"kind": "val", "iteration": i * 10, "psnr": 20 + i, "ssim": 0.5,
                            "best": True})
    if resumed_at is not None:  # a second session repeats the iterations after the checkpoint
        records.append({"kind": "start", "iteration": resumed_at, "resumed": True})
        records.append({"kind": "train", "iteration": resumed_at + 10, "g/pixel": 0.001})
    (run / "log.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return run


def test_read_curves_keeps_losses_and_scores_and_the_later_session_wins(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, "g", [0.5, 0.4, 0.3, 0.2], resumed_at=20)
    curves = read_curves(run)
    assert curves.label == "g"
    assert curves.series["g/pixel"] == [(10, 0.5), (20, 0.4), (30, 0.001), (40, 0.2)]
    assert curves.series["val/psnr"] == [(20, 22.0), (40, 24.0)]
    assert "lr/G" not in curves.series and "it_per_s" not in curves.series
    assert panel_tags([curves]) == ["g/pixel", "val/psnr", "val/ssim"]


def test_plot_draws_one_panel_per_tag_and_one_colour_per_run(tmp_path: Path) -> None:
    a = _run_folder(tmp_path, "psnr", [0.5, 0.4, 0.3, 0.2])
    b = _run_folder(tmp_path, "spsr_g", [0.6, 0.5, 0.45, 0.44])
    out = tmp_path / "out dir" / "curves.png"
    result = RUNNER.invoke(app, ["plot", str(a), str(b), "-o", str(out), "--title", "two runs"])
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(out).convert("RGB"))
    single = np.asarray(draw_curves([read_curves(a)]))
    assert image.shape[1] == 2 * 440 and image.shape[0] > single.shape[0] // 2  # 3 panels, 2 a row
    for colour in PALETTE[:2]:  # both runs are drawn
        assert (image == colour).all(axis=-1).sum() > 200
    assert not (image == PALETTE[2]).all(axis=-1).any()


def test_plot_errors_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = RUNNER.invoke(app, ["plot", str(empty), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 1 and "has no log.jsonl" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "c.png").exists()
    run = _run_folder(tmp_path, "g", [0.5])
    result = RUNNER.invoke(app, ["plot", str(run), "-o", str(tmp_path / "c.gif")])
    assert result.exit_code == 1 and ".png" in result.output
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "log.jsonl").write_text(json.dumps({"kind": "start", "iteration": 0}) + "\n")
    result = RUNNER.invoke(app, ["plot", str(fresh), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 1 and "nothing to plot" in result.output
