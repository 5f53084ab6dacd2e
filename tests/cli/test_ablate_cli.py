"""`spsr ablate` end to end on tiny configurations: a 2×2 grid trained on a real (tiny) patch store
and scored on two HR images; the table files and their best marks; reuse on re-run (nothing
retrained or re-scored); a failing and an unavailable configuration beside finished ones; resume
of a half-finished run through the engine's resume; the plan of --dry-run."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from _text import flat
from _train_fixtures import make_store, one_thread  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from spsr.ablation import (
    AblationInputs,
    EvalSpec,
    eval_datasets,
    eval_key,
    load_grid,
    plan_grid,
    run_plan,
)
from spsr.ablation.plan import CONFLICT, EVALUATE, RESUME, REUSE, TRAIN
from spsr.metrics.registry import EvalSettings, MetricSuite
from spsr.train.engine import Trainer
from spsr.train.log import read_log
from spsr_cli.app import app

RUNNER = CliRunner()

# A 2×2 grid (pixel criterion × learning rate) of tiny PSNR-stage generators.
GRID = """
title = "Pixel loss x learning rate"
metrics = ["psnr", "niqe"]
variant = "psnr"

[set]
"model.nf" = 8
"model.nb" = 2
"model.gc" = 4
"run.amp" = "off"
"run.device" = "cpu"
"data.batch_size" = 2
"data.workers" = 0
# PyTorch's init: from the official ×0.1 one, this 2-block RRDB still outputs a flat, near-black
# image after 4 steps at lr 1e-3 (NIQE undefined, L1 and L2 rows equal), so the rows would not differ.
"model.weight_init" = "pytorch"

[[config]]
name = "L1, lr 1e-3"
set = { "optim.lr_g" = 1e-3 }

[[config]]
name = "L1, lr 5e-3"
set = { "optim.lr_g" = 5e-3 }

[[config]]
name = "L2, lr 1e-3"
[config.set.optim]
lr_g = 1e-3
[config.set.loss]
pixel_criterion = "l2"

[[config]]
name = "L2, lr 5e-3"
set = { "optim.lr_g" = 5e-3, "loss.pixel_criterion" = "l2" }
"""

# Two more rows: one the engine rejects when the stage is built, one whose variant it lacks.
BROKEN_ROWS = """
[[config]]
name = "no loss"
set = { "loss.pixel" = 0 }

[[config]]
name = "future variant"
variant = "zz"
"""

NAMES = ["L1, lr 1e-3", "L1, lr 5e-3", "L2, lr 1e-3", "L2, lr 5e-3"]
FOLDERS = ["l1_lr_1e-3", "l1_lr_5e-3", "l2_lr_1e-3", "l2_lr_5e-3"]


def _run(*args: object):
    return RUNNER.invoke(app, ["ablate", *(str(a) for a in args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny store, two 104×104 HR images (NIQE needs 96×96 after the 4-pixel border), the
    grid."""
    from skimage import data as skdata

    from spsr.data.image_io import write_image

    root = tmp_path_factory.mktemp("ablate")
    store = make_store(root / "data", n_images=2, size=64, val=0)
    hr = root / "Tiny" / "HR"
    hr.mkdir(parents=True)
    write_image(hr / "astronaut.png", skdata.astronaut()[100:204, 150:254])
    write_image(hr / "chelsea.png", skdata.chelsea()[60:164, 120:224])
    grid = root / "grid.toml"
    grid.write_text(GRID, encoding="utf-8")
    broken = root / "grid_broken.toml"
    broken.write_text(GRID + BROKEN_ROWS, encoding="utf-8")
    return {"store": store, "hr": hr, "grid": grid, "broken": broken, "root": root}


def _common(inputs: dict[str, Path], out: Path) -> list[object]:
    return [
        inputs["store"],
        "-o",
        out,
        "--iterations",
        4,
        "--hr",
        inputs["hr"],
        "--precision",
        "fp32",
        "--device",
        "cpu",
        "--quiet",
    ]


def _expected_best(rows: list[dict], metric: str, higher: bool) -> set[str]:
    values = {r["name"]: r["mean"]["Tiny"][metric] for r in rows if r["status"] == "ok"}
    target = (max if higher else min)(values.values())
    return {name for name, v in values.items() if v == target}


def test_grid_end_to_end_reuse_and_failure_isolation(inputs: dict[str, Path]) -> None:
    out = inputs["root"] / "out"
    r = _run("--spec", inputs["grid"], *_common(inputs, out))
    assert r.exit_code == 0, r.output

    # The run folders, each trained to the budget and scored.
    for folder in FOLDERS:
        run = out / "runs" / folder
        assert (run / "model.safetensors").is_file() and (run / "eval.json").is_file()
        assert [rec["iteration"] for rec in read_log(run, "end")] == [4]

    # JSON: every row ok, means of both images, best marks that follow each metric's direction.
    table = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
    rows = table["rows"]
    assert [row["name"] for row in rows] == NAMES
    assert all(row["status"] == "ok" and row["iteration"] == 4 for row in rows)
    assert table["better"] == {"psnr": "higher", "niqe": "lower"}
    for row in rows:
        images = row["images"]["Tiny"]
        assert set(images) == {"astronaut", "chelsea"}
        mean = (images["astronaut"]["psnr"] + images["chelsea"]["psnr"]) / 2
        assert row["mean"]["Tiny"]["psnr"] == pytest.approx(mean, rel=1e-12)
    best_psnr = _expected_best(rows, "psnr", higher=True)
    best_niqe = _expected_best(rows, "niqe", higher=False)
    assert set(table["best"]["Tiny"]["psnr"]) == best_psnr
    assert set(table["best"]["Tiny"]["niqe"]) == best_niqe
    # The configurations differ: training did something (lr 5e-3 learns far more in 4 steps).
    psnrs = [row["mean"]["Tiny"]["psnr"] for row in rows]
    assert len({round(p, 6) for p in psnrs}) == 4

    # Markdown: header with directions, best cells in bold.
    md = (out / "ablation.md").read_text(encoding="utf-8")
    assert "| Method | Tiny PSNR ↑ | Tiny NIQE ↓ |" in md
    lines = {
        line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")
    }
    for row in rows:
        psnr_text = f"{row['mean']['Tiny']['psnr']:.3f}"
        niqe_text = f"{row['mean']['Tiny']['niqe']:.4f}"
        assert (f"**{psnr_text}**" in lines[row["name"]]) == (row["name"] in best_psnr)
        assert (f"**{niqe_text}**" in lines[row["name"]]) == (row["name"] in best_niqe)
    assert "lower is better" in md
    assert "protocol spsr: PSNR/SSIM on Y, border 4 shaved" in md
    # The rows' training curves, as spsr plot draws them, embedded under the table.
    assert md.rstrip().endswith("![training curves](curves.png)")
    from PIL import Image

    from spsr.train.curves import PALETTE

    curves = np.asarray(Image.open(out / "curves.png").convert("RGB"))
    assert all((curves == colour).all(axis=-1).sum() > 50 for colour in PALETTE[:4])  # 4 rows
    assert table["protocol"]["name"] == "spsr"

    # CSV: full-precision means and the best columns.
    csv_rows = list(csv.DictReader(io.StringIO((out / "ablation.csv").read_text(encoding="utf-8"))))
    assert [c["configuration"] for c in csv_rows] == NAMES
    for c, row in zip(csv_rows, rows, strict=True):
        assert float(c["Tiny/psnr"]) == row["mean"]["Tiny"]["psnr"]
        assert ("Tiny/psnr" in c["best"].split()) == (row["name"] in best_psnr)

    # Re-run with two more rows: the four finished ones are reused (no training, no scoring),
    # one row fails when its stage is built, one variant is unknown; the exit code says so.
    def stamps() -> dict[str, tuple[int, int, int]]:
        return {
            f: (
                (out / "runs" / f / "model.safetensors").stat().st_mtime_ns,
                (out / "runs" / f / "log.jsonl").stat().st_size,
                (out / "runs" / f / "eval.json").stat().st_mtime_ns,
            )
            for f in FOLDERS
        }

    before = stamps()
    r = _run("--spec", inputs["broken"], *_common(inputs, out))
    assert r.exit_code == 1, r.output
    assert stamps() == before
    table2 = json.loads((out / "ablation.json").read_text(encoding="utf-8"))
    by_name = {row["name"]: row for row in table2["rows"]}
    for name in NAMES:
        assert by_name[name]["mean"] == next(row["mean"] for row in rows if row["name"] == name)
    assert by_name["no loss"]["status"] == "failed"
    assert "loss.pixel > 0" in by_name["no loss"]["reason"]
    assert by_name["future variant"]["status"] == "unavailable"
    assert "variant zz is not available" in by_name["future variant"]["reason"]
    md = (out / "ablation.md").read_text(encoding="utf-8")
    assert "| no loss (failed) | – | – |" in md
    assert "- **future variant**: unavailable: variant zz is not available" in md
    assert "no loss (failed)" in flat(r.output) and "variant zz" in flat(r.output)


def test_half_finished_run_resumes_and_changed_configs_conflict(inputs: dict[str, Path]) -> None:
    out = inputs["root"] / "resume"
    grid = load_grid(inputs["grid"]).select(["L1, lr 5e-3"])
    common = AblationInputs(data=str(inputs["store"]), iterations=4)
    datasets = eval_datasets([inputs["hr"]])
    spec = EvalSpec(datasets, EvalSettings.for_protocol(("psnr",), 4), 4, 256, "fp32")
    (planned,) = plan_grid(grid, out, common, eval_key(spec))
    assert planned.action == TRAIN

    def stop_at_two(trainer: Trainer) -> None:
        if trainer.iteration == 2:
            trainer.request_stop("SIGTERM")

    result = Trainer(planned.train_config, planned.run_dir, callbacks=[stop_at_two]).run()
    assert result.interrupted and result.iteration == 2

    (planned,) = plan_grid(grid, out, common, eval_key(spec))
    assert planned.action == RESUME and planned.done_iterations == 2
    (row,) = run_plan([planned], spec, MetricSuite(spec.settings))
    assert row.status == "ok" and row.trained and row.iteration == 4
    starts = read_log(planned.run_dir, "start")
    assert [(s["iteration"], s["resumed"]) for s in starts] == [(0, False), (2, True)]
    assert math.isfinite(row.results[0].means()["psnr"])

    (planned,) = plan_grid(grid, out, common, eval_key(spec))
    assert planned.action == REUSE
    # A bigger budget continues the run; a changed configuration is not silently reused.
    (planned,) = plan_grid(grid, out, AblationInputs(data=str(inputs["store"]), iterations=6))
    assert planned.action == RESUME and planned.done_iterations == 4
    changed = AblationInputs(
        data=str(inputs["store"]), iterations=4, overrides={"optim.beta1": 0.5}
    )
    (planned,) = plan_grid(grid, out, changed)
    assert planned.action == CONFLICT and "optim.beta1" in planned.problem
    fewer = AblationInputs(data=str(inputs["store"]), iterations=3)
    (planned,) = plan_grid(grid, out, fewer)
    assert planned.action == CONFLICT and "more than the 3" in planned.problem


def test_dry_run_prints_the_plan_without_training(inputs: dict[str, Path]) -> None:
    out = inputs["root"] / "dry"
    r = RUNNER.invoke(
        app,
        [
            "ablate",
            "--spec",
            str(inputs["broken"]),
            "-o",
            str(out),
            "--dry-run",
            "--iterations",
            "7",
        ],
        catch_exceptions=False,
        env={"COLUMNS": "200"},
    )
    assert r.exit_code == 0, r.output
    text = flat(r.output)
    assert "L2, lr 5e-3" in text and "optim.lr_g=0.005, loss.pixel_criterion=l2" in text
    assert "unavailable: variant zz is not available" in text
    assert r.output.count(" train ") >= 5
    assert not out.exists()


def test_preset_rows_needing_inputs_say_what_is_missing(tmp_path: Path) -> None:
    r = RUNNER.invoke(
        app,
        ["ablate", "--preset", "backbones", "-o", str(tmp_path / "b"), "--dry-run"],
        catch_exceptions=False,
        env={"COLUMNS": "250"},
    )
    assert r.exit_code == 0, r.output
    out = flat(r.output)
    assert "needs --init edsr=RUN" in out and "needs --init srresnet=RUN" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "X", "--dry-run"], "--preset NAME or --spec FILE"),
        (["-o", "X", "--preset", "nope", "--dry-run"], "unknown ablation preset 'nope'"),
        (
            ["-o", "X", "--preset", "g-components", "--only", "SPSR-Q", "--dry-run"],
            "no configuration 'SPSR-Q'",
        ),
        (["-o", "X", "--preset", "g-components"], "give DATA"),
        (
            ["-o", "X", "--preset", "g-components", "--metrics", "psnr,fid", "--dry-run"],
            "unknown metric",
        ),
        (
            ["-o", "X", "--preset", "g-components", "--init", "a", "--init", "b", "--dry-run"],
            "--init is given twice",
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args: list[str], message: str, tmp_path: Path) -> None:
    r = RUNNER.invoke(
        app,
        ["ablate", *[a.replace("X", str(tmp_path / "x")) for a in args]],
        env={"COLUMNS": "250"},
    )
    assert r.exit_code == 1
    assert message in flat(r.output) and "Traceback" not in r.output


def test_a_signal_while_scoring_ends_the_grid_and_the_next_run_carries_on(
    inputs: dict[str, Path],
) -> None:
    import signal

    from spsr.ablation.hooks import AblationHooks
    from spsr.train.signals import StopSignals

    out = inputs["root"] / "signalled"
    grid = load_grid(inputs["grid"]).select(["L1, lr 1e-3", "L2, lr 1e-3"])
    common = AblationInputs(data=str(inputs["store"]), iterations=2)
    spec = EvalSpec(eval_datasets([inputs["hr"]]),
                    EvalSettings.for_protocol(("psnr",), 4), 4, 256, "fp32")

    class TermWhileScoring(AblationHooks):
        def image_scored(self, planned, name) -> None:
            signal.raise_signal(signal.SIGTERM)  # as the scheduler would, mid-scoring

    stop = StopSignals()
    first, second = run_plan(plan_grid(grid, out, common, eval_key(spec)), spec,
                             MetricSuite(spec.settings), hooks=TermWhileScoring(), stop=stop)
    assert stop.reason == "SIGTERM"
    assert (first.status, second.status) == ("interrupted", "not run")
    assert "while scoring" in first.reason and first.trained
    plan = plan_grid(grid, out, common, eval_key(spec))
    assert [p.action for p in plan] == [EVALUATE, TRAIN]  # trained: only the scores are missing
    rows = run_plan(plan, spec, MetricSuite(spec.settings))
    assert [r.status for r in rows] == ["ok", "ok"] and not rows[0].trained


def test_the_protocol_is_part_of_the_scores_fingerprint(inputs: dict[str, Path]) -> None:
    datasets = eval_datasets([inputs["hr"]])

    def key(protocol: str, **overrides: bool) -> str:
        settings = EvalSettings.for_protocol(("psnr", "ssim"), 4, protocol, **overrides)
        return eval_key(EvalSpec(datasets, settings, 4, 256, "fp32"))

    assert key("spsr") != key("basicsr")  # scores of another protocol are not reused
    assert key("spsr", ssim_downsample=False) != key("spsr")
    assert key("spsr", ssim_downsample=True) == key("spsr")
