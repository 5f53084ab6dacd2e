"""`python -m spsr.tools.bundle_weights`: a finished run becomes a built-in weights file that carries
the whole pipeline's provenance (every stage's command lines, time) and the scores eval measured."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from _train_fixtures import TinyPairs, one_thread, tiny_config  # noqa: F401 (autouse fixture)
from safetensors.torch import load_file
from skimage import data as skdata
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr.infer import load_model
from spsr.tools.bundle_weights import main as bundle_main
from spsr.train.engine import Trainer
from spsr_cli.cmd_eval import evaluate

_EVAL = typer.Typer(pretty_exceptions_enable=False)
_EVAL.command()(evaluate)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PSNR run, a GAN run initialised from it, and eval's JSON of both against bicubic."""
    root = tmp_path_factory.mktemp("pipeline")
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        psnr = tiny_config("psnr", **{"run.iterations": 4, "run.checkpoint_every": 4, "model.arch": "spsr"})
        Trainer(psnr, root / "psnr", dataset=TinyPairs(n=4), command="spsr pretrain-psnr data.h5").run()
        gan = tiny_config("g", **{"run.iterations": 2, "run.checkpoint_every": 2,
                                  "run.init": str(root / "psnr")})
        Trainer(gan, root / "perceptual", dataset=TinyPairs(n=4), command="spsr train data.h5 --variant g").run()
    hr = root / "Tiny" / "HR"
    hr.mkdir(parents=True)
    astro = skdata.astronaut()
    for i in range(2):
        write_image(hr / f"img{i}.png", np.ascontiguousarray(astro[i * 60:i * 60 + 48, 100:148]))
    result = CliRunner().invoke(_EVAL, [
        "--weights", str(root / "psnr"), "--weights", str(root / "perceptual"), "--model", "bicubic",
        str(hr), "--metrics", "psnr,ssim", "--engine", "torch", "--json", str(root / "scores.json"), "-q",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root


def test_bundled_weights_equal_the_run_and_carry_every_stage(runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "spsr_perceptual_x4.safetensors"
    code = bundle_main([str(runs / "perceptual"), "-o", str(out), "--name", "perceptual",
                        "--upstream", str(runs / "psnr"), "--scores", str(runs / "scores.json")])
    assert code == 0 and "wrote" in capsys.readouterr().out
    bundled, original = load_file(out), load_file(runs / "perceptual" / "model.safetensors")
    assert set(bundled) == set(original)
    assert all(torch.equal(bundled[k], original[k]) for k in original)

    prov = load_model(out).metadata["provenance"]
    assert prov["name"] == "perceptual" and prov["iterations"] == 2
    assert [s["run"] for s in prov["stages"]] == ["psnr", "perceptual"]
    assert prov["command"] == "spsr pretrain-psnr data.h5 && spsr train data.h5 --variant g"
    seconds = [s["train_seconds"] for s in prov["stages"]]
    assert all(t > 0 for t in seconds) and prov["train_seconds"] == pytest.approx(sum(seconds), abs=0.11)
    scores = json.loads((runs / "scores.json").read_text())["datasets"]["Tiny"]["models"]
    assert prov["scores"]["Tiny"]["psnr"] == pytest.approx(scores["perceptual"]["mean"]["psnr"], abs=1e-4)
    assert prov["scores"]["Tiny bicubic"]["ssim"] == pytest.approx(scores["Bicubic"]["mean"]["ssim"], abs=1e-4)
    assert prov["scores_protocol"] == "spsr"  # eval's default, as its JSON records


def test_a_run_without_weights_or_scores_is_a_one_line_error(runs: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.safetensors"
    assert bundle_main([str(tmp_path), "-o", str(out), "--name", "psnr"]) == 1
    assert "has no model.safetensors" in capsys.readouterr().err
    assert bundle_main([str(runs / "psnr"), "-o", str(out), "--name", "psnr",
                        "--scores", str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in capsys.readouterr().err
    renamed = tmp_path / "renamed"  # scores are looked up by the run folder's name, as eval labels it
    shutil.copytree(runs / "psnr", renamed)
    assert bundle_main([str(renamed), "-o", str(out), "--name", "psnr",
                        "--scores", str(runs / "scores.json")]) == 1
    assert "has no scores of 'renamed'" in capsys.readouterr().err
    assert not out.exists()
