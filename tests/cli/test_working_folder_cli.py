"""The working-folder convention end to end (issue #32), in a temporary working folder.

The four lines users type first run exactly as written (tiny data and model options appended,
only where the line allows options); the README's quick tour runs as written, both its block with
defaults and its block with explicit paths; and the conflicts end in one clear line with nothing
overwritten: a run already there, two stores, no store, a missing NSE, no benchmark, a weights
name that names nothing.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from _train_fixtures import REPO, one_thread  # noqa: F401 - autouse: one thread per test
from conftest import trust_cached_file
from skimage import data as skdata
from typer.testing import CliRunner

from spsr.data.image_io import read_image, write_image
from spsr.train.config import load_toml
from spsr_cli.app import app

FOUR_LINES = (
    "spsr prepare-data div2k/",
    "spsr train --variant g",
    "spsr upscale in/ out/ --tile 256",
    "spsr eval --metrics psnr,ssim,lpips,pi",
)
TINY_MODEL = ["--nf", "8", "--nb", "2", "--set", "model.gc=4", "--batch-size", "2", "--amp", "off",
              "--no-channels-last", "--workers", "0", "--device", "cpu", "--iterations", "2",
              "--set", "model.extra.image_skip=true"]
#: Options appended to each command: tiny patches, tiny models, two iterations, the CPU (the
#: residual over bicubic keeps a two-iteration model's output a photo: Ma's score needs one).
EXTRA = {
    "prepare-data": ["--patch", "32", "--step", "16", "--val", "1", "-j", "0"],
    "pretrain-psnr": [*TINY_MODEL, "--arch", "spsr"],  # image_skip is an SPSR generator's option
    "train": [*TINY_MODEL, "--set", "loss.perceptual_net=vgg_random",
              "--set", "loss.perceptual_layer=conv1_2", "--set", "d.nf=4"],
    "upscale": ["--device", "cpu"],
    "eval": ["--device", "cpu"],
}
RUNNER = CliRunner()


def spsr(line: str, *more: str):
    """Run one ``spsr …`` line as written, plus :data:`EXTRA` for its command and ``more``."""
    words = shlex.split(line, comments=True)
    assert words[0] == "spsr", line
    result = RUNNER.invoke(app, [*words[1:], *EXTRA.get(words[1], []), *more])
    return result


def ok(line: str, *more: str):
    result = spsr(line, *more)
    assert result.exit_code == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def one_line_error(line: str, *needles: str, more: tuple[str, ...] = ()) -> str:
    """Exit 1 with one ``error:`` line (the last on stderr) holding every needle; its text."""
    result = spsr(line, *more)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1, f"{line}\n{result.stdout}\n{result.stderr}"
    assert [x for x in lines if x.startswith("error:")] == [lines[-1]], result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def _photo(name: str, size: int) -> np.ndarray:
    return np.ascontiguousarray(getattr(skdata, name)()[:size, :size])


def fill_working_folder(root: Path) -> None:
    """``div2k/`` (3 photos), ``in/`` (1 LR photo), ``datasets/Set5/HR`` and ``datasets/Set14/HR``."""
    for folder, names, size in (("div2k", ("astronaut", "chelsea", "coffee"), 96),
                                ("in", ("rocket",), 24),
                                ("datasets/Set5/HR", ("astronaut", "coffee"), 128),
                                ("datasets/Set14/HR", ("chelsea",), 128)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_image(root / folder / f"{name}.png", _photo(name, size))


@pytest.fixture()
def metric_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LPIPS's AlexNet and Ma's model.mat in the caches (random / hand-made, trusted here), so
    the line's lpips and pi run offline."""
    from _alexnet import random_alexnet_features
    from _ma_model import HAND_TREES, make_forest, save_model

    from spsr.losses.lpips_net import ALEXNET_FILENAME

    alexnet = tmp_path / "torch" / "hub" / "checkpoints" / ALEXNET_FILENAME
    alexnet.parent.mkdir(parents=True)
    random_alexnet_features(alexnet)
    ma = tmp_path / "spsr cache" / "nrqm" / "model.mat"
    ma.parent.mkdir(parents=True)
    save_model(ma, [make_forest(HAND_TREES, 5)] * 3, [0, 1, 0, 0])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "spsr cache"))
    trust_cached_file(monkeypatch, "alexnet", alexnet)
    trust_cached_file(monkeypatch, "ma-model", ma)


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metric_models: None) -> Path:
    """A fresh working folder (its path has a space), the current directory."""
    root = tmp_path / "work folder"
    fill_working_folder(root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("SPSR_DATASETS", raising=False)
    return root


def _config(run: Path) -> dict:
    return load_toml(run / "config.toml")


def test_the_four_lines_work_exactly_as_written(workdir: Path) -> None:
    prepare, train, upscale, evaluate = FOUR_LINES

    result = ok(prepare)
    store = Path("data", "div2k_x4.h5")
    assert store.is_file() and f"store: {store}" in result.stderr
    before = store.stat().st_mtime_ns
    result = ok(prepare)  # the same line again: the complete store is reused, not rewritten
    assert "reused" in result.stderr and store.stat().st_mtime_ns == before

    result = ok(train)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "PSNR-oriented" in warnings[0]
    assert "spsr pretrain-psnr" in warnings[0] and "--init" in warnings[0]
    assert Path("runs", "g", "model.safetensors").is_file()
    cfg = _config(Path("runs", "g"))
    assert cfg["variant"] == "g" and Path(cfg["data"]["path"]) == store.resolve()
    assert not cfg["run"]["init"]

    ok(upscale)
    (written,) = sorted(Path("out").iterdir())
    assert read_image(written).pixels.shape == (96, 96, 3)  # the built-in ×4 model

    result = ok(evaluate)
    assert "benchmarks: Set5" in result.stderr and "Set14" in result.stderr
    table = result.stdout
    assert table.count("x4 benchmarks") == 1 and table.count("┏") == 1  # one table
    groups = next(line for line in table.splitlines() if "Set5" in line and "┃" in line)
    assert [c for c in re.split(r"[ ┃]+", groups) if c] == ["Set5", "Set14"]  # a group each
    header = next(line for line in table.splitlines() if "LPIPS" in line)
    assert [c for c in re.split(r"[ ┃│]+", header) if c] == [
        "Model", *["PSNR", "↑", "SSIM", "↑", "LPIPS", "↓", "PI", "↓"] * 2]
    (row,) = [line for line in table.splitlines() if "default" in line]
    values = [float(v) for v in re.findall(r"-?\d+\.\d+", row)]
    assert len(values) == 8 and all(np.isfinite(values))
    assert values[0] > 20 and values[4] > 20  # PSNR of a real ×4 model on real photos


def _readme_tour() -> tuple[list[str], list[str]]:
    """The two ```bash``` blocks of README.md's "Quick tour": defaults, then explicit paths."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Quick tour\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, "the quick tour has a block with defaults and one with paths"
    return tuple(  # type: ignore[return-value]
        [line for line in block.splitlines() if line.strip()] for block in blocks
    )


def test_readme_quick_tour_runs_as_written_with_defaults_and_with_explicit_paths(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults, explicit = _readme_tour()
    assert [shlex.split(line, comments=True)[1] for line in defaults] == [
        "prepare-data", "pretrain-psnr", "train", "upscale", "eval"]

    results = [ok(line) for line in defaults]
    psnr, g = Path("runs", "psnr").resolve(), Path("runs", "g").resolve()
    assert (psnr / "model.safetensors").is_file() and (g / "model.safetensors").is_file()
    train_said = results[2].stderr
    assert "initialising the generator from runs/psnr" in " ".join(train_said.split())
    assert "warning:" not in train_said
    assert Path(_config(g)["run"]["init"]) == psnr  # recorded in the run's config
    assert len(list(Path("out").iterdir())) == 1
    assert re.search(r"^\W*g\W", results[4].stdout, flags=re.M), results[4].stdout  # the g row

    # The same pipeline with every path explicit, in a second working folder: the same runs.
    other = tmp_path / "explicit"
    fill_working_folder(other)
    monkeypatch.chdir(other)
    results = [ok(line) for line in explicit]
    assert "warning:" not in results[2].stderr
    assert len(list(Path("out").iterdir())) == 1
    assert "Set5" in results[4].stdout and "Set14" in results[4].stdout
    same = (workdir / "runs" / "g" / "config.toml").read_text().replace(str(workdir.resolve()), "ROOT")
    assert (other / "runs" / "g" / "config.toml").read_text().replace(str(other.resolve()), "ROOT") == same


def test_an_existing_run_is_never_overwritten(workdir: Path) -> None:
    ok("spsr prepare-data div2k/")
    ok("spsr train --variant g")
    model = Path("runs", "g", "model.safetensors")
    before = model.read_bytes()
    one_line_error("spsr train --variant g", "runs/g already holds a run",
                   "spsr train --variant g --resume", "-o DIR")
    assert model.read_bytes() == before
    ok("spsr train --variant g --resume", "--iterations", "3")  # continues runs/g
    assert load_toml(Path("runs", "g", "config.toml"))["run"]["iterations"] == 3
    ok("spsr train --variant g -o runs/g2")  # starts another
    assert Path("runs", "g2", "model.safetensors").is_file()
    ok("spsr gradmap in/ panels/ --weights g2")  # a run's name as --weights
    assert len(list(Path("panels").iterdir())) == 1
    ok("spsr pretrain-psnr")
    one_line_error("spsr pretrain-psnr", "runs/psnr already holds a run", "--resume")


def test_stores_missing_or_several_and_a_missing_nse_are_one_line(workdir: Path) -> None:
    one_line_error("spsr train --variant g", "no patch store for x4 in data/",
                   "spsr prepare-data DIR")
    assert not Path("runs", "g").exists()
    ok("spsr prepare-data div2k/")
    ok("spsr prepare-data div2k/ -o data/again_x4.h5")
    line = one_line_error("spsr pretrain-psnr", "2 patch stores for x4", "spsr pretrain-psnr STORE.h5")
    assert "data/again_x4.h5" in line and "data/div2k_x4.h5" in line
    ok("spsr pretrain-psnr data/again_x4.h5")  # naming one settles it
    Path("data", "again_x4.h5").unlink()
    one_line_error("spsr train --variant g --scale 2", "no patch store for x2",
                   "data/div2k_x4.h5 is x4", "--scale")
    one_line_error("spsr train --variant p", "variant p needs a structure extractor",
                   "spsr pretrain-nse --task contrastive", "runs/nse-contrastive", "--nse")
    one_line_error("spsr train --variant j", "spsr pretrain-nse --task jigsaw", "runs/nse-jigsaw")
    assert sorted(p.name for p in Path("runs").iterdir()) == ["psnr"]


def test_eval_without_benchmarks_says_where_it_looked(workdir: Path, monkeypatch) -> None:
    shutil.rmtree("datasets")
    one_line_error("spsr eval --metrics psnr", "no benchmark found in datasets/", "Set5",
                   "SPSR_DATASETS", "--datasets")
    elsewhere = workdir / "elsewhere"
    fill_working_folder(elsewhere)
    result = ok("spsr eval --metrics psnr", "--datasets", str(elsewhere / "datasets"))
    assert "Set5" in result.stdout and "Set14" in result.stdout
    monkeypatch.setenv("SPSR_DATASETS", str(elsewhere / "datasets"))
    result = ok("spsr eval --metrics psnr --model bicubic")
    assert "Bicubic" in result.stdout and "default" not in result.stdout  # a baseline alone
    one_line_error("spsr eval --metrics psnr datasets/Set5/HR", "--datasets", more=(
        "--datasets", str(elsewhere)))


def test_run_names_as_weights_and_unknown_names_list_what_exists(workdir: Path) -> None:
    ok("spsr prepare-data div2k/")
    ok("spsr pretrain-psnr")
    result = ok("spsr upscale in/ out/ --weights psnr")  # the built-in name has priority
    said = " ".join(result.stderr.split())
    assert "--weights psnr is the built-in model, not the run runs/psnr" in said
    assert "(nf 32," in said  # the built-in model, not runs/psnr's nf 8
    # --init takes the same names: the built-in psnr (nf 32) is not runs/psnr, and spsr says so
    result = spsr("spsr train --variant g --init psnr")
    said = " ".join(result.stderr.split())
    assert "warning: --init psnr is the built-in model, not the run runs/psnr" in said
    assert result.exit_code == 1 and "--nf 8 conflicts with the --init checkpoint psnr" in said
    os.rename(Path("runs", "psnr"), Path("runs", "mine"))
    result = ok("spsr upscale in/ out3/ --weights mine")
    assert "(nf 8," in result.stderr and "warning" not in result.stderr  # runs/mine's model
    one_line_error("spsr upscale in/ out4/ --weights psnrr", "psnrr: no such weights file",
                   "built-in names: default, psnr", "runs in runs/: mine")
    assert not Path("out4").exists() or not any(Path("out4").iterdir())


def test_structure_variants_find_their_nse_run(workdir: Path) -> None:
    ok("spsr prepare-data div2k/")
    nse_options = ("--crop", "84", "--iterations", "2", "--batch-size", "2", "--device", "cpu",
                   "--workers", "0")
    ok("spsr pretrain-nse div2k/ --task jigsaw", *nse_options)
    nse = Path("runs", "nse-jigsaw")
    assert (nse / "nse.safetensors").is_file()
    one_line_error("spsr pretrain-nse div2k/ --task jigsaw", "runs/nse-jigsaw already holds a run",
                   "spsr pretrain-nse --task jigsaw --resume", more=nse_options)
    ok("spsr pretrain-nse --task jigsaw --resume --iterations 3")  # continues runs/nse-jigsaw
    assert load_toml(nse / "config.toml")["run"]["iterations"] == 3
    result = ok("spsr train --variant j")
    assert "structure extractor: runs/nse-jigsaw" in " ".join(result.stderr.split())
    assert Path(_config(Path("runs", "j"))["structure"]["nse"]) == nse.resolve()
    one_line_error("spsr train --variant p", "spsr pretrain-nse --task contrastive")
