"""The training options are declared once: every option of train / pretrain-psnr / pretrain-nse
maps to a configuration key through one table, or is one of the few that steer the command."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from spsr_cli.cmd_ablate import ablate
from spsr_cli.cmd_pretrain_nse import pretrain_nse
from spsr_cli.cmd_pretrain_psnr import pretrain_psnr
from spsr_cli.cmd_train import train
from spsr_cli.training_options import OPTION_KEYS, training_overrides

# Options that choose what the command does rather than set a configuration key.
STEERING = {
    "output", "variant", "resume", "config", "arch", "backbone", "set_", "offline", "quiet",
    "as_json", "task", "evaluate", "test", "eval_tasks", "fit_steps", "fit_images", "repeats",
    "eval_protocol",  # how --evaluate scores, not how it trains
    "tensorboard", "wandb",  # where the run is watched, not how it trains
}


def _parameters(command) -> set[str]:
    return set(inspect.signature(inspect.unwrap(command)).parameters)


@pytest.mark.parametrize("command", [train, pretrain_psnr, pretrain_nse])
def test_every_training_option_has_its_configuration_key(command) -> None:
    assert _parameters(command) - STEERING - set(OPTION_KEYS) == set()


def test_ablate_shares_the_training_options_it_passes_on() -> None:
    shared = {"batch_size", "lr_patch", "checkpoint_every", "checkpoint_minutes", "vgg_weights",
              "device", "amp", "workers", "seed"}
    assert shared <= _parameters(ablate) and shared <= set(OPTION_KEYS)


def test_training_overrides_converts_and_leaves_out_what_was_not_given(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "init").mkdir()
    got = training_overrides({
        "data": Path("store.h5"), "init": "init", "channels_last": False, "lr": 2e-4,
        "iterations": None, "output": Path("run"), "quiet": True,
    })
    assert got == {
        "data.path": str((tmp_path / "store.h5").resolve()),
        "run.init": str((tmp_path / "init").resolve()),  # an existing path, made absolute
        "run.channels_last": "off",
        "optim.lr_g": 2e-4,
    }
    assert training_overrides({"init": "perceptual"}) == {"run.init": "perceptual"}  # a built-in
