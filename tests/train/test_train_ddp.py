"""Two-process DistributedDataParallel (gloo on CPU, launched with torchrun): pre-training matches
one process with the same global batch, and every GAN variant trains with processes in sync."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import torch
from _train_fixtures import PYTHON, REPO, TinyPairs, make_store, one_thread, subprocess_env  # noqa: F401
from safetensors.torch import load_file

from spsr.archs import build_model
from spsr.archs.init import init_generator
from spsr.train.config import TrainConfig, load_toml
from spsr.train.engine import Trainer, seed_everything
from spsr.train.log import read_log

TORCHRUN = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*TORCHRUN, *args], env=subprocess_env(), cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_pretrain_psnr_under_two_process_ddp_matches_one_process(tmp_path: Path) -> None:
    store = make_store(tmp_path / "data")
    ddp_run = tmp_path / "ddp"
    _torchrun(["-m", "spsr_cli.app", "pretrain-psnr", str(store), "-o", str(ddp_run),
               "--iterations", "4", "--batch-size", "4", "--lr", "1e-3", "--nf", "8", "--nb", "2",
               "--set", "model.gc=4", "--amp", "off", "--no-channels-last", "--workers", "0",
               "--device", "cpu", "--quiet"], tmp_path)
    start = read_log(ddp_run, "start")[0]
    assert (start["world_size"], start["batch_per_process"]) == (2, 2)
    if importlib.util.find_spec("tensorboard") is not None:  # event files: rank 0's only
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

        (events,) = ddp_run.glob("events.out.tfevents.*")
        steps = Counter((v.tag, e.step) for e in EventFileLoader(str(events)).Load()
                        if e.HasField("summary") for v in e.summary.value)
        assert steps[("g/pixel", 4)] == 1 and max(steps.values()) == 1

    cfg = TrainConfig.from_dict(load_toml(ddp_run / "config.toml"))
    Trainer(cfg, tmp_path / "single").run()
    assert read_log(tmp_path / "single", "start")[0]["batch_per_process"] == 4

    ddp = load_file(ddp_run / "model.safetensors")
    single = load_file(tmp_path / "single" / "model.safetensors")
    seed_everything(cfg.run.seed)
    init = init_generator(build_model(cfg.model.spec()), cfg.model.arch, cfg.model.weight_init).state_dict()
    moved = max((single[k] - init[k]).abs().max().item() for k in single)
    diff = max((single[k] - ddp[k]).abs().max().item() for k in single)
    print(f"weights moved by {moved:.3g}, 1 vs 2 processes differ by {diff:.3g}")
    assert moved > 1e-3  # training changed the weights...
    assert diff < 1e-3 * moved  # ...and both runs changed them the same way (float rounding only)
    ddp_loss = [r["g/pixel"] for r in read_log(ddp_run, "train")]
    single_loss = [r["g/pixel"] for r in read_log(tmp_path / "single", "train")]
    assert ddp_loss == pytest.approx(single_loss, rel=1e-4)


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs of ``_train_ddp_worker.py`` under two processes (one torchrun for all tests)."""
    from spsr.losses.structure import random_nse
    from spsr.nse.files import NSE_FILE, save_nse

    out = tmp_path_factory.mktemp("ddp")
    nse = {}
    for seed, task in enumerate(("contrastive", "jigsaw"), start=1):  # p, j: F differs from r's
        (out / f"nse_{task}").mkdir()
        nse[task] = save_nse(out / f"nse_{task}" / NSE_FILE, random_nse(seed), {"task": task})
    _torchrun([str(REPO / "tests" / "_train_ddp_worker.py"), str(out / "runs"),
               str(nse["contrastive"]), str(nse["jigsaw"])], out)
    return out / "runs"


def test_every_gan_variant_trains_under_two_process_ddp(ddp_runs: Path) -> None:
    tmp_path = ddp_runs
    checksums = json.loads((tmp_path / "checksums.json").read_text())
    assert len(checksums) == 2 and set(checksums[0]) >= {"esrgan", "g"}
    for name in checksums[0]:
        assert checksums[0][name] == checksums[1][name], name  # processes in sync
        start = read_log(tmp_path / name, "start")[0]
        assert (start["world_size"], start["batch_per_process"]) == (2, 2)
        state = torch.load(tmp_path / name / "state" / "last.pt", weights_only=True)
        assert state["iteration"] == 2 and len(state["rng"]) == 2
        assert "D" in state["networks"]
    assert set(torch.load(tmp_path / "g" / "state" / "last.pt", weights_only=True)["networks"]) == {
        "G", "D", "D_grad"}


@pytest.mark.parametrize("variant", ["p", "j", "r"])
def test_summed_structure_loss_trains_the_same_in_one_and_two_processes(
    ddp_runs: Path, tmp_path: Path, variant: str
) -> None:
    # β_SF·Σ|F(SR) − F(HR)| sums over the batch: each of N processes sums its slice and DDP
    # averages the gradients, so without scaling by N the term would weigh 1/N of the rest.
    ddp_run = ddp_runs / variant
    start = read_log(ddp_run, "start")[0]
    assert (start["world_size"], start["batch_per_process"]) == (2, 2)
    cfg = TrainConfig.from_dict(load_toml(ddp_run / "config.toml"))
    assert cfg.section("structure").gamma == 0 and cfg.section("structure").beta > 0
    Trainer(cfg, tmp_path / "single", dataset=TinyPairs(n=8)).run()

    ddp = load_file(ddp_run / "model.safetensors")
    single = load_file(tmp_path / "single" / "model.safetensors")
    seed_everything(cfg.run.seed)
    init = init_generator(build_model(cfg.model.spec()), cfg.model.arch, cfg.model.weight_init).state_dict()
    moved = max((single[k] - init[k]).abs().max().item() for k in single)
    diff = max((single[k] - ddp[k]).abs().max().item() for k in single)
    print(f"{variant}: weights moved by {moved:.3g}, 1 vs 2 processes differ by {diff:.3g}")
    assert moved > 1e-3
    assert diff < 1e-3 * moved
    ddp_loss = [r["g/structure"] for r in read_log(ddp_run, "train")]
    single_loss = [r["g/structure"] for r in read_log(tmp_path / "single", "train")]
    assert ddp_loss == pytest.approx(single_loss, rel=1e-4)  # logged: the global batch's sum
