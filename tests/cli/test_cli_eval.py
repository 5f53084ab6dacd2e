"""``spsr eval`` end to end on tiny images and a tiny model: both modes, tables, CSV/JSON, --save-sr,
and one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from _text import flat
from skimage import data as skdata
from typer.testing import CliRunner

from spsr.archs import ArchSpec, build_model
from spsr.data.image_io import read_rgb, write_image
from spsr.infer import save_weights
from spsr.metrics import calculate_psnr, calculate_ssim
from spsr.ops import bicubic_degrade, imresize_np
from spsr_cli.cmd_eval import evaluate

# The command alone, as `spsr eval` runs it (the full app registers the same function).
_APP = typer.Typer(pretty_exceptions_enable=False)
_APP.command()(evaluate)
RUNNER = CliRunner()


def _run(*args: str):
    return RUNNER.invoke(_APP, [str(a) for a in args], catch_exceptions=False)


def _hr_folder(root: Path, count: int = 2) -> Path:
    folder = root / "Tiny" / "HR"
    folder.mkdir(parents=True)
    astro = skdata.astronaut()
    for i in range(count):
        write_image(folder / f"img{i}.png", np.ascontiguousarray(astro[i * 60 : i * 60 + 50, 100:154]))
    return folder


def _sr_folder(root: Path, hr_dir: Path) -> Path:
    folder = root / "results"
    folder.mkdir()
    for path in sorted(hr_dir.glob("*.png")):
        _, lr = bicubic_degrade(read_rgb(path), 4)
        write_image(folder / f"{path.stem}_x4_SR.png", imresize_np(lr, 4))
    return folder


def test_sr_folder_mode_prints_the_table_and_writes_csv_and_json(tmp_path):
    hr_dir = _hr_folder(tmp_path)
    sr_dir = _sr_folder(tmp_path, hr_dir)
    write_image(sr_dir / "extra.png", read_rgb(hr_dir / "img0.png"))
    out_csv, out_json = tmp_path / "o" / "scores.csv", tmp_path / "o" / "scores.json"
    result = _run(sr_dir, "--hr", hr_dir, "--csv", out_csv, "--json", out_json, "-q")
    assert result.exit_code == 0, result.output
    assert "Tiny (x4, 2 images)" in flat(result.output) and "PSNR ↑" in flat(result.output)
    assert "unmatched SR" in flat(result.output) and "extra.png" in flat(result.output)
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["image"] for r in rows] == ["img0", "img1"]
    hr, lr = bicubic_degrade(read_rgb(hr_dir / "img1.png"), 4)
    sr = imresize_np(lr, 4)
    assert float(rows[1]["psnr"]) == pytest.approx(calculate_psnr(sr, hr, 4), abs=1e-12)
    assert float(rows[1]["ssim"]) == pytest.approx(calculate_ssim(sr, hr, 4), abs=1e-12)
    payload = json.loads(out_json.read_text())
    assert payload["mode"] == "sr-folder" and payload["unmatched_sr"][0].endswith("extra.png")
    assert payload["settings"]["crop_border"] == 4
    assert set(payload["datasets"]["Tiny"]["models"]["results"]["images"]) == {"img0", "img1"}


def test_json_dash_prints_only_json(tmp_path):
    hr_dir = _hr_folder(tmp_path, 1)
    sr_dir = _sr_folder(tmp_path, hr_dir)
    result = RUNNER.invoke(_APP, [str(sr_dir), "--hr", str(hr_dir), "--json", "-", "--rgb",
                                  "--crop-border", "2", "--metrics", "psnr"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["settings"]["y_channel"] is False and payload["settings"]["crop_border"] == 2
    assert list(payload["better"]) == ["psnr"]


def test_model_mode_scores_a_tiny_model_against_the_bicubic_baseline(tmp_path):
    hr_dir = _hr_folder(tmp_path)
    torch.manual_seed(0)
    spec = ArchSpec(arch="rrdb", scale=4, nf=8, nb=1, gc=4)
    weights = save_weights(tmp_path / "tiny.safetensors", build_model(spec), spec)
    out_json, saved = tmp_path / "r.json", tmp_path / "sr"
    result = _run("--weights", weights, "--model", "bicubic", hr_dir, "--json", out_json,
                  "--save-sr", saved, "--tile", "8", "-q")
    assert result.exit_code == 0, result.output
    assert "Bicubic" in flat(result.output) and "tiny" in flat(result.output)
    payload = json.loads(out_json.read_text())
    models = payload["datasets"]["Tiny"]["models"]
    assert list(models) == ["Bicubic", "tiny"] and payload["models"]["tiny"] == str(weights)
    hr, lr = bicubic_degrade(read_rgb(hr_dir / "img0.png"), 4)
    assert models["Bicubic"]["images"]["img0"]["psnr"] == pytest.approx(
        calculate_psnr(imresize_np(lr, 4), hr, 4), abs=1e-12
    )
    kept = read_rgb(saved / "tiny" / "Tiny" / "img0.png")
    assert kept.shape == hr.shape
    assert models["tiny"]["images"]["img0"]["psnr"] == pytest.approx(
        calculate_psnr(kept, hr, 4), abs=1e-12
    )
    best = payload["datasets"]["Tiny"]["best"]["psnr"]
    assert best == ["Bicubic"]  # an untrained model loses to bicubic


def test_protocol_is_recorded_in_json_csv_and_under_the_table(tmp_path):
    hr_dir = tmp_path / "Big" / "HR"
    hr_dir.mkdir(parents=True)
    write_image(hr_dir / "astro.png", np.ascontiguousarray(skdata.astronaut()[:400, :400]))
    sr_dir = _sr_folder(tmp_path, hr_dir)
    hr, lr = bicubic_degrade(read_rgb(hr_dir / "astro.png"), 4)
    sr = imresize_np(lr, 4)
    ssim = {}
    for protocol, extra in (("spsr", []), ("basicsr", []), ("spsr", ["--no-ssim-downsample"])):
        out_csv, out_json = tmp_path / "s.csv", tmp_path / "s.json"
        args = [sr_dir, "--hr", hr_dir, "--protocol", protocol, *extra, "--csv", out_csv,
                "--json", out_json, "-q"]
        result = _run(*args)
        assert result.exit_code == 0, result.output
        payload = json.loads(out_json.read_text())
        label = payload["protocol"]["label"]
        (row,) = list(csv.DictReader(out_csv.open()))
        assert row["protocol"] == label
        assert f"protocol {label}:" in " ".join(result.output.split())
        ssim[label] = float(row["ssim"])
    assert ssim["spsr"] == pytest.approx(calculate_ssim(sr, hr, 4, downsample=True), abs=1e-12)
    assert ssim["basicsr"] == pytest.approx(calculate_ssim(sr, hr, 4, downsample=False), abs=1e-12)
    assert ssim["spsr + ssim_downsample=off"] == ssim["basicsr"] != ssim["spsr"]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give --hr HR_DIR"),
        (["--protocol", "matlab", "--model", "bicubic"], "unknown protocol 'matlab'"),
        (["--model", "lanczos"], "unknown --model lanczos"),
        (["--metrics", "psnr,fid", "--model", "bicubic"], "unknown metric(s) fid"),
        (["--hr", "{hr}", "--model", "bicubic"], "cannot be combined"),
    ],
)
def test_bad_options_give_one_line_errors(tmp_path, args, message):
    hr_dir = _hr_folder(tmp_path, 1)
    result = RUNNER.invoke(_APP, [a.format(hr=hr_dir) for a in args] + [str(hr_dir)])
    assert result.exit_code == 1
    assert message in flat(result.output) and "Traceback" not in result.output


def test_nothing_pairing_is_an_error_and_writes_nothing(tmp_path):
    hr_dir = _hr_folder(tmp_path, 1)
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "unrelated.png", read_rgb(hr_dir / "img0.png"))
    result = RUNNER.invoke(_APP, [str(other), "--hr", str(hr_dir), "--csv", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "matches a file" in result.output
    assert not (tmp_path / "x.csv").exists()


def test_wrong_scale_weights_and_missing_ma_model_fail_before_any_work(tmp_path, monkeypatch):
    hr_dir = _hr_folder(tmp_path, 1)
    spec = ArchSpec(arch="rrdb", scale=2, nf=8, nb=1, gc=4)
    weights = save_weights(tmp_path / "x2.safetensors", build_model(spec), spec)
    result = RUNNER.invoke(_APP, ["--weights", str(weights), str(hr_dir)])
    assert result.exit_code == 1 and "x2" in result.output and "x4" in result.output
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))
    result = RUNNER.invoke(_APP, ["--model", "bicubic", "--metrics", "pi", str(hr_dir)])
    assert result.exit_code == 1 and "model.mat" in result.output and "--ma-model" in result.output
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    result = RUNNER.invoke(_APP, ["--model", "bicubic", "--metrics", "lpips", str(hr_dir)])
    assert result.exit_code == 1 and "alexnet-owt-7be5be79.pth" in result.output


def test_skip_unavailable_scores_what_it_can_and_says_how_to_fetch_the_rest(tmp_path, monkeypatch):
    hr_dir = _hr_folder(tmp_path, 1)
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    out_json = tmp_path / "r.json"
    args = ["--model", "bicubic", "--metrics", "psnr,ssim,lpips,pi", str(hr_dir), "--offline", "-q"]
    result = RUNNER.invoke(_APP, [*args, "--skip-unavailable", "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "skipped lpips" in text and "spsr fetch lpips" in text and "alexnet" in text
    assert "skipped pi" in text and "spsr fetch pi" in text and "model.mat" in text
    assert "Traceback" not in result.output
    payload = json.loads(out_json.read_text())
    scores = payload["datasets"]["Tiny"]["models"]["Bicubic"]["images"]["img0"]
    assert set(scores) == {"psnr", "ssim"} and scores["psnr"] > 20
    assert set(payload["skipped_metrics"]) == {"lpips", "pi"}
    # Without it, today's up-front failure stays (nothing scored, exit 1).
    result = RUNNER.invoke(_APP, args)
    assert result.exit_code == 1 and "PSNR" not in result.output
    # Nothing left to compute is an error.
    result = RUNNER.invoke(_APP, ["--model", "bicubic", "--metrics", "lpips", str(hr_dir), "--offline",
                                  "--skip-unavailable", "-q"])
    assert result.exit_code == 1 and "none of the metrics" in flat(result.output)


def test_off_a_terminal_eval_prints_a_line_per_image_and_tile_progress(tmp_path, monkeypatch):
    import spsr_cli._common as common

    monkeypatch.setattr(common, "TILE_PROGRESS_AFTER", 0.0)  # as if every image were slow
    monkeypatch.setattr(common, "PLAIN_TILE_EVERY", 0.0)
    hr_dir = _hr_folder(tmp_path, 2)
    spec = ArchSpec(arch="rrdb", scale=4, nf=8, nb=1, gc=4)
    weights = save_weights(tmp_path / "tiny.safetensors", build_model(spec), spec)
    result = _run("--weights", weights, "--model", "bicubic", hr_dir, "--tile", "4")
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.split()) for line in result.stderr.splitlines()]
    per_image = [line for line in lines if line.startswith("[")]
    assert [line.split(" (")[0] for line in per_image] == [
        "[1/2] Bicubic on Tiny: img0", "[2/2] Bicubic on Tiny: img1",
        "[1/2] tiny on Tiny: img0", "[2/2] tiny on Tiny: img1"]
    assert any(line.startswith("img1.png: tiles") for line in lines)


def test_on_a_terminal_the_bar_counts_images_per_model(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    import spsr_cli._common as common
    import spsr_cli.cmd_eval as cmd

    screen = Console(file=io.StringIO(), width=100, force_terminal=True, record=True, color_system=None)
    monkeypatch.setattr(common, "err_console", screen)
    monkeypatch.setattr(cmd, "err_console", screen)
    hr_dir = _hr_folder(tmp_path, 1)
    result = _run("--model", "bicubic", hr_dir)
    assert result.exit_code == 0, result.output
    drawn = screen.export_text()
    assert "Bicubic on Tiny" in drawn and "1/1" in drawn and "/2" not in drawn
