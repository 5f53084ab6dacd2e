"""`spsr pretrain-nse` end to end on tiny image folders: training on the engine (schedule from
epochs, files, log, exact resume), `--evaluate` (table and JSON), one-line errors, and DDP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _text import flat
from _train_fixtures import PYTHON, make_store, one_thread, subprocess_env  # noqa: F401
from safetensors.torch import load_file
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr.nse.files import load_nse, nse_metadata
from spsr.train.config import TrainConfig, load_toml
from spsr.train.log import read_log
from spsr_cli.app import app

RUNNER = CliRunner()
TINY = ["--set", "nse.mid_channels=8", "--set", "nse.head_hidden=16", "--batch-size", "2",
        "--amp", "off", "--no-channels-last", "--workers", "0", "--device", "cpu", "--quiet"]


def _run(*args: object):
    return RUNNER.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 160×160 crops of skimage photographs and a 20×20 image too small for any crop."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea"):
        write_image(folder / f"{name}.png", getattr(data, name)()[40:200, 40:200])
    write_image(folder / "tiny.png", np.zeros((20, 20, 3), np.uint8))
    return folder


def test_contrastive_run_schedule_files_and_log(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "nse"
    r = _run("pretrain-nse", photos, "-o", run, "--task", "contrastive", "--crop", 128,
             "--epochs", 3, "--lr-step-epochs", 1, "--sampling", "vertical", "--augment", "dihedral",
             *TINY)
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.from_dict(load_toml(run / "config.toml"))
    assert cfg.section("nse").augment == "dihedral"  # --augment reaches the run's config
    # 3 usable images (the tiny one is skipped), batch 2: 2 iterations per epoch.
    assert (cfg.stage, cfg.variant, cfg.run.iterations) == ("nse", "contrastive", 6)
    assert cfg.optim.milestones == [2, 4] and cfg.optim.gamma == 0.2 and cfg.optim.lr_g == 1e-3
    assert cfg.section("nse").sampling == "vertical"
    assert nse_metadata(run)["task"] == "contrastive"
    assert nse_metadata(run)["sampling"] == "vertical"
    provenance = json.loads(nse_metadata(run)["provenance"])  # how it was made, for bundling
    assert provenance["variant"] == "contrastive" and provenance["iteration"] == 6
    assert len(provenance["commands"]) == 1 and provenance["train_seconds"] > 0
    assert load_nse(run).config() == {"in_channels": 3, "mid_channels": 8, "out_channels": 32}
    records = read_log(run, "train")
    assert {"nse/loss", "nse/accuracy", "nse/negatives"} <= set(records[-1])
    assert 400 < records[-1]["nse/negatives"] < 700  # 128×128 crops
    assert [r["lr/task"] for r in records][-1] == pytest.approx(1e-3 * 0.2 ** 2)
    assert (run / "nse_head.safetensors").is_file()


def test_resume_gives_the_same_extractor_as_an_uninterrupted_run(
    photos: Path, tmp_path: Path
) -> None:
    common = ["--task", "jigsaw", "--crop", 96, *TINY]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _run("pretrain-nse", photos, "-o", straight, "--iterations", 4, *common).exit_code == 0
    assert _run("pretrain-nse", photos, "-o", split, "--iterations", 2, *common).exit_code == 0
    r = _run("pretrain-nse", "-o", split, "--resume", "--iterations", 4, "--quiet")
    assert r.exit_code == 0, r.output
    a, b = load_file(straight / "nse.safetensors"), load_file(split / "nse.safetensors")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert nse_metadata(split)["task"] == "jigsaw"
    assert read_log(split, "start")[-1]["resumed"] is True


def test_evaluate_prints_table_and_writes_json(photos: Path, tmp_path: Path) -> None:
    from skimage import data

    big = tmp_path / "big"
    big.mkdir()
    write_image(big / "astronaut.png", data.astronaut()[:256, :256])
    write_image(big / "coffee.png", data.coffee()[:256, :256])
    run = tmp_path / "nse"
    r = _run("pretrain-nse", big, "-o", run, "--crop", 128, "--iterations", 1, *TINY)
    assert r.exit_code == 0, r.output
    r = _run("pretrain-nse", big, "-o", run, "--evaluate", "--test", f"small={photos}",
             "--test", big, "--fit-steps", 2, "--repeats", 1, "--device", "cpu")
    assert r.exit_code == 0, r.output
    out = flat(r.stdout)
    assert "contrastive top-1" in out and "jigsaw accuracy" in out and "small" in out
    report = json.loads((run / "nse_eval.json").read_text())
    assert report["trained_task"] == "contrastive" and report["fit"]["images"] == 2
    rows = {(row["dataset"], row["task"]): row for row in report["results"]}
    # 160×160 photos hold no 200×200 crop: no contrastive row for them.
    assert set(rows) == {("small", "jigsaw"), ("big", "contrastive"), ("big", "jigsaw")}
    assert rows["small", "jigsaw"]["chance"] == pytest.approx(1 / 24)
    assert rows["small", "jigsaw"]["repeat_accuracies"] == [rows["small", "jigsaw"]["accuracy"]]
    assert rows["small", "jigsaw"]["std"] == 0.0  # one repeat: no spread
    # TPAMI 2021 §5.2 / App. B.2 by default: one puzzle per 84-crop, one target per 200-crop.
    assert report["protocol"] == "paper" and report["samples_per_crop"] == 1
    assert rows["small", "jigsaw"]["samples"] == 3  # 3 photos × one 84-crop × one puzzle
    assert rows["big", "contrastive"]["samples"] == 2  # one 200-crop per image × one target
    assert 1800 < rows["big", "contrastive"]["mean_negatives"] < 2300  # "around 2000"
    assert rows["big", "contrastive"]["chance"] == pytest.approx(
        1 / (rows["big", "contrastive"]["mean_negatives"] + 1))
    r = _run("pretrain-nse", "-o", run, "--evaluate", "--test", photos, "--eval-tasks", "jigsaw",
             "--fit-steps", 1, "--repeats", 2, "--device", "cpu", "--json",
             "--eval-protocol", "many-anchors")
    assert r.exit_code == 0, r.output
    many = json.loads(r.stdout)
    assert many["fit"]["data"] == str(big.resolve())  # from the run's config
    assert many["protocol"] == "many-anchors" and many["samples_per_crop"] == 16
    assert many["results"][0]["samples"] == 2 * 3 * 16  # 2 repeats × 3 crops × 16 puzzles
    r = _run("pretrain-nse", "-o", run, "--evaluate", "--test", photos, "--eval-protocol", "one")
    assert r.exit_code == 1 and "unknown NSE evaluation protocol 'one'" in flat(r.stderr)
    assert "Traceback" not in r.stderr
    r = _run("pretrain-nse", photos, "-o", run, "--evaluate", "--test", photos, "--fit-steps", 1)
    assert r.exit_code == 1 and "200×200 crop to re-fit" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "puzzle"], "--task takes contrastive or jigsaw"),
        (["--sampling", "diagonal"], "unknown sampling"),
        (["--augment", "rotate"], "unknown NSE augmentation 'rotate'"),
        (["--crop", 60, "--task", "jigsaw"], "too small"),
        (["--crop", 500], "no image of at least 500"),
    ],
)
def test_bad_input_is_one_line_error(
    photos: Path, tmp_path: Path, args: list, message: str
) -> None:
    r = _run("pretrain-nse", photos, "-o", tmp_path / "run", *args, *TINY)
    assert r.exit_code == 1
    assert message in flat(r.stderr) and "Traceback" not in r.stderr


def test_store_with_small_patches_and_evaluate_errors(tmp_path: Path) -> None:
    store = make_store(tmp_path / "data")  # 32-pixel patches
    r = _run("pretrain-nse", store, "-o", tmp_path / "run", *TINY)
    assert r.exit_code == 1 and "--patch 480" in r.stderr
    r = _run("pretrain-nse", store, "-o", tmp_path / "none", "--evaluate", "--test", store.parent)
    assert r.exit_code == 1 and "no neural structure extractor" in r.stderr
    r = _run("pretrain-nse", store, "-o", tmp_path / "none", "--evaluate")
    assert r.exit_code == 1 and "--test" in r.stderr


def test_store_with_large_patches_trains(tmp_path: Path) -> None:
    store = make_store(tmp_path / "data", size=128)
    from spsr.data.store import StoreOptions, write_store

    big = tmp_path / "big.h5"
    pngs = sorted((tmp_path / "data").glob("*.png"))
    write_store(pngs, big, StoreOptions.make(4, patch=100, step=28))
    r = _run("pretrain-nse", big, "-o", tmp_path / "run", "--crop", 100, "--iterations", 2, *TINY)
    assert r.exit_code == 0, r.output
    assert store.is_file() and (tmp_path / "run" / "nse.safetensors").is_file()


def test_pretrain_nse_under_two_process_ddp(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "spsr_cli.app", "pretrain-nse", str(photos), "-o", str(run), "--crop", "128",
           "--iterations", "2", "--crops-per-image", "2", *[str(a) for a in TINY]]
    proc = subprocess.run(cmd, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True,
                          check=False,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    start = read_log(run, "start")[0]
    assert (start["world_size"], start["batch_per_process"]) == (2, 1)
    assert (run / "nse.safetensors").is_file()


def test_iterations_beyond_the_epochs_keep_decaying_every_step(photos: Path, tmp_path: Path) -> None:
    from spsr.train.stages.nse import epoch_schedule

    # 80 images, batch 16: 5 iterations an epoch. 500 iterations with a decay every 34 epochs
    # decay at 170 and 340, whatever --epochs says (it used to stop at the epochs' horizon).
    assert epoch_schedule(80, 16, 60, 34, iterations=500) == (500, [170, 340])
    assert epoch_schedule(80, 16, 60, 20) == (300, [100, 200])
    run = tmp_path / "nse"
    r = _run("pretrain-nse", photos, "-o", run, "--task", "jigsaw", "--crop", 96, "--epochs", 1,
             "--iterations", 5, "--lr-step-epochs", 1, *TINY)
    assert r.exit_code == 0, r.output
    cfg = TrainConfig.from_dict(load_toml(run / "config.toml"))
    assert cfg.run.iterations == 5 and cfg.optim.milestones == [2, 4]  # 2 iterations an epoch
