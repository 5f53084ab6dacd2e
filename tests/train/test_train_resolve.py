"""Run resolution: one function takes the ordered layers and is the one place that validates;
the NSE's epoch schedule is its hook; every file of a run folder is named in one module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import spsr.run_folder as run_folder
import spsr.train.config as config_module
from spsr.errors import ConfigError
from spsr.run_folder import RunFolder
from spsr.train.config import dump_toml, ensure_validated
from spsr.train.resolve import RunLayers, changed_keys, flat_config, resolve_run
from spsr.train.stages.nse import EpochSchedule
from spsr.train.variants import preset

ROOT = Path(__file__).resolve().parents[2]


def test_layers_apply_in_order_the_last_winning(tmp_path) -> None:
    toml = tmp_path / "my.toml"
    toml.write_text('[model]\nnf = 32\n[loss]\npixel = 0.02\n[run]\niterations = 50\n')
    layers = RunLayers(
        variant="g", config_file=toml, arch="rrdb",
        overrides=[
            {"run.iterations": 60, "loss.pixel": 0.03},
            {"run.iterations": 70, "run.seed": None},
        ],
    )
    cfg = resolve_run(layers)
    assert (cfg.variant, cfg.model.arch, cfg.model.nf) == ("g", "rrdb", 32)  # file, then --arch
    assert (cfg.loss.pixel, cfg.run.iterations) == (0.03, 70)  # later layers win; None: not given
    assert cfg.run.seed == preset("g").run.seed


def test_resume_takes_the_stored_config_and_only_resume_keys(tmp_path) -> None:
    cfg = resolve_run(RunLayers("esrgan", overrides=[{"run.iterations": 10}]))
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.config.write_text(dump_toml(cfg))
    layers = RunLayers(overrides=[{"run.iterations": 20}, {"data.workers": 0}])
    resumed = resolve_run(layers, folder, True)
    assert (resumed.variant, resumed.run.iterations, resumed.data.workers) == ("esrgan", 20, 0)
    with pytest.raises(ConfigError, match=r"loss\.gan cannot change when resuming"):
        resolve_run(RunLayers(overrides=[{"loss.gan": 0.5}]), folder, True)
    with pytest.raises(ConfigError, match="cannot change when resuming"):
        resolve_run(RunLayers(arch="edsr"), folder, True)


def test_changed_keys_compare_every_dotted_key() -> None:
    a, b = preset("g"), preset("g")
    b.loss.pixel, b.run.iterations = 0.5, 7
    assert changed_keys(a, b) == ["loss.pixel", "run.iterations"]
    assert changed_keys(a, b, {"run.iterations"}) == ["loss.pixel"]
    assert flat_config(a)["model.nf"] == 64 and flat_config(a)["stage"] == "gan"


def test_validation_runs_once_and_again_only_after_a_change(monkeypatch) -> None:
    cfg = resolve_run(RunLayers("g"))
    real_check = config_module._check

    def no_second_check(_cfg):
        raise AssertionError("validated twice")

    monkeypatch.setattr(config_module, "_check", no_second_check)
    assert ensure_validated(cfg) is cfg  # what the engine does with a resolved config
    monkeypatch.setattr(config_module, "_check", real_check)
    cfg.run.iterations = 0  # changed after resolution: checked again
    with pytest.raises(ConfigError, match=r"run\.iterations and data\.batch_size must be positive"):
        ensure_validated(cfg)


class _Crops(list):
    """Stands in for the crop dataset: only its length matters to the schedule."""


def test_nse_epoch_schedule_is_a_resolution_hook() -> None:
    schedule = EpochSchedule()
    schedule.dataset = _Crops(range(10))  # 10 crops per epoch
    layers = RunLayers("contrastive", overrides=[{"data.batch_size": 4, "nse.epochs": 3,
                                                  "nse.lr_step_epochs": 1}])
    cfg = resolve_run(layers, hook=schedule)
    assert (cfg.run.iterations, cfg.optim.milestones) == (9, [3, 6])  # 3 iterations per epoch
    given = RunLayers("contrastive", overrides=[{"data.batch_size": 4, "nse.epochs": 3,
                                                 "nse.lr_step_epochs": 1, "run.iterations": 5}])
    cfg = resolve_run(given, hook=schedule)
    # an explicit length wins, and the decays come every epoch over that length
    assert (cfg.run.iterations, cfg.optim.milestones) == (5, [3])
    longer = RunLayers("contrastive", overrides=[{"data.batch_size": 4, "nse.epochs": 3,
                                                  "nse.lr_step_epochs": 1, "run.iterations": 20}])
    cfg = resolve_run(longer, hook=schedule)
    assert (cfg.run.iterations, cfg.optim.milestones) == (20, [3, 6, 9, 12, 15, 18])
    psnr = resolve_run(RunLayers("psnr"), hook=schedule)  # not an NSE run: untouched
    assert psnr.run.iterations == preset("psnr").run.iterations


def test_run_folder_names_every_file(tmp_path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.config == tmp_path / "config.toml"
    assert folder.model == tmp_path / "model.safetensors"
    assert folder.last_state == tmp_path / "state" / "last.pt"
    assert folder.numbered_state(1000) == tmp_path / "state" / "iter_00001000.pt"
    folder.state_dir.mkdir()
    for name in ("iter_00000200.pt", "iter_00000100.pt", ".last.pt.x.tmp"):
        (folder.state_dir / name).write_bytes(b"")
    (tmp_path / ".model.safetensors.y.tmp").write_bytes(b"")
    assert [p.name for p in folder.numbered_states()] == ["iter_00000100.pt", "iter_00000200.pt"]
    temporary = sorted(p.name for p in folder.temporary_files())
    assert temporary == [".last.pt.x.tmp", ".model.safetensors.y.tmp"]


def test_run_folder_file_names_are_written_nowhere_else() -> None:
    """A file name of a run folder as a string constant outside spsr/run_folder.py would be a
    second definition that the next rename misses."""
    names = {v for k, v in vars(run_folder).items() if k.endswith("_FILE") and isinstance(v, str)}
    names |= {run_folder.LAST_STATE}
    found = []
    for path in [*(ROOT / "spsr").rglob("*.py"), *(ROOT / "spsr_cli").rglob("*.py")]:
        if path.name == "run_folder.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert found == []
