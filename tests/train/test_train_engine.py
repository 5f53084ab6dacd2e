"""The training engine on tiny configurations: learning, exact resume, NaN handling, EMA, warm-up,
init, and a stage added from outside through the extension API."""

from __future__ import annotations

import signal

import pytest
import torch
from _train_fixtures import TinyPairs, assert_identical, one_thread, tiny_config  # noqa: F401 (autouse fixture)
from safetensors.torch import load_file

from spsr.archs import build_model, sr_of
from spsr.errors import CheckpointError, ConfigError
from spsr.infer import load_model
from spsr.losses.pixel import pixel_distance
from spsr.train.engine import Trainer, TrainingDivergedError
from spsr.train.log import read_log
from spsr.train.stage import Stage, make_adam, make_multistep
from spsr.train.state import load_state
from spsr.train.variants import Variant, register_stage, register_variant


def _stop_at(iteration: int):
    def callback(trainer: Trainer) -> None:
        if trainer.iteration == iteration:
            signal.raise_signal(signal.SIGTERM)  # the real handler path, as `kill` would
    return callback



def test_a_short_psnr_run_lowers_the_loss(tmp_path) -> None:
    cfg = tiny_config("psnr", **{"run.iterations": 40, "optim.lr_g": 2e-3, "data.batch_size": 4,
                                 "run.checkpoint_every": 40})
    result = Trainer(cfg, tmp_path / "run", dataset=TinyPairs(n=8)).run()
    assert result.reason == "finished" and result.iteration == 40
    losses = [r["g/pixel"] for r in read_log(tmp_path / "run", "train")]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first


def test_twenty_steps_equal_ten_then_kill_then_resume_ten_bit_exact(tmp_path) -> None:
    cfg = tiny_config("g", **{"run.iterations": 20, "run.checkpoint_every": 5, "run.ema": 0.9,
                              "model.nb": 1, "optim.milestones": "7,15"})
    data = TinyPairs(n=6)
    whole = Trainer(cfg, tmp_path / "whole", dataset=data).run()
    assert whole.iteration == 20

    first = Trainer(cfg, tmp_path / "split", dataset=data, callbacks=[_stop_at(10)],
                    command="spsr train part-1").run()
    assert (first.reason, first.iteration) == ("SIGTERM", 10)
    assert load_state(tmp_path / "split" / "state" / "last.pt")["iteration"] == 10
    second = Trainer(cfg, tmp_path / "split", resume=True, dataset=data, command="spsr train --resume").run()
    assert (second.reason, second.iteration) == ("finished", 20)

    a = load_state(tmp_path / "whole" / "state" / "last.pt")
    b = load_state(tmp_path / "split" / "state" / "last.pt")
    # Provenance differs by design (two sessions, two command lines); the training state may not.
    for state in (a, b):
        assert state["engine"].pop("train_seconds") > 0
    assert b["engine"].pop("commands") == ["spsr train part-1", "spsr train --resume"]
    assert len(a["engine"].pop("commands")) == 1
    assert set(a["networks"]) == {"G", "D", "D_grad"} and set(a["optimizers"]) == {"G", "D", "D_grad"}
    assert a["optimizers"]["D_grad"]["state"]  # discriminator moments are there, and equal
    assert_identical(a, b)
    wa, wb = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "split" / "model.safetensors")
    assert_identical(wa, wb, "model.safetensors")
    prov = load_model(tmp_path / "split").metadata["provenance"]
    assert prov["commands"] == ["spsr train part-1", "spsr train --resume"]
    assert prov["iteration"] == 20 and prov["variant"] == "g" and prov["train_seconds"] > 0
    assert prov["batch_size"] == cfg.data.batch_size and prov["device"].startswith("cpu")
    resumed = [r for r in read_log(tmp_path / "split", "start")]
    assert [r["resumed"] for r in resumed] == [False, True]


class _ProbeStage(Stage):
    """A stage added from outside the engine: L1 on a tiny RRDB, NaN on chosen iterations."""

    nan_from = 10**9
    nan_until = 10**9

    def __init__(self, cfg, rt) -> None:
        super().__init__(cfg, rt)
        spec = cfg.model.spec()
        net = build_model(spec)
        self.G = self.add_network("G", net, export_spec=spec)
        opt = make_adam(net.parameters(), cfg.optim, cfg.optim.lr_g)
        self.add_optimizer("G", opt, make_multistep(opt, cfg.optim))

    def train_step(self, batch):
        loss = pixel_distance(sr_of(self.G(batch["lr"])), batch["hr"])
        if self.nan_from <= self.rt.iteration <= self.nan_until:
            loss = loss * float("nan")
        self.rt.optimize(loss, "G")
        return {"g/pixel": float(loss.detach())}


register_stage("probe", _ProbeStage)


def _configure_probe(cfg) -> None:
    cfg.model.arch = "rrdb"


register_variant(Variant("probe", "probe", "test stage", _configure_probe))


def test_non_finite_steps_are_skipped_with_a_warning(tmp_path) -> None:
    _ProbeStage.nan_from, _ProbeStage.nan_until = 3, 4
    cfg = tiny_config("probe", **{"run.iterations": 6, "run.checkpoint_every": 6, "optim.lr_g": 1e-2})
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snap(trainer: Trainer) -> None:
        snapshots[trainer.iteration] = {k: v.clone() for k, v in trainer.generator.state_dict().items()}

    result = Trainer(cfg, tmp_path / "run", dataset=TinyPairs(), callbacks=[snap]).run()
    assert result.reason == "finished"
    assert_identical(snapshots[2], snapshots[4])  # iterations 3 and 4 changed nothing
    assert any(not torch.equal(snapshots[4][k], snapshots[5][k]) for k in snapshots[4])
    warnings = read_log(tmp_path / "run", "warning")
    assert [w["iteration"] for w in warnings] == [3, 4]
    assert sum(r["skipped"] for r in read_log(tmp_path / "run", "train")) == 2


def test_repeated_non_finite_losses_stop_training(tmp_path) -> None:
    _ProbeStage.nan_from, _ProbeStage.nan_until = 4, 10**9
    cfg = tiny_config("probe", **{"run.iterations": 20, "run.checkpoint_every": 2, "run.nan_patience": 3})
    with pytest.raises(TrainingDivergedError, match="not finite for 3 iterations"):
        Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()
    assert load_state(tmp_path / "run" / "state" / "last.pt")["iteration"] == 4
    assert read_log(tmp_path / "run", "end")[-1]["reason"] == "diverged"


def test_ema_weights_are_what_model_safetensors_holds(tmp_path) -> None:
    _ProbeStage.nan_from = 10**9
    cfg = tiny_config("probe", **{"run.iterations": 3, "run.checkpoint_every": 3, "run.ema": 0.5,
                                  "optim.lr_g": 1e-2})
    Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()
    state = load_state(tmp_path / "run" / "state" / "last.pt")
    saved = load_file(tmp_path / "run" / "model.safetensors")
    key = "model.0.weight"
    assert torch.equal(saved[key], state["ema"][key])
    assert not torch.equal(saved[key], state["networks"]["G"][key])


def test_fusion_warmup_trains_only_the_fusion_block(tmp_path) -> None:
    cfg = tiny_config("g", **{"run.iterations": 3, "run.fusion_warmup": 2, "run.checkpoint_every": 3,
                              "model.nb": 1, "optim.lr_g": 1e-2})
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snap(trainer: Trainer) -> None:
        snapshots[trainer.iteration] = {k: v.clone() for k, v in trainer.generator.named_parameters()}

    Trainer(cfg, tmp_path / "run", dataset=TinyPairs(), callbacks=[snap]).run()
    changed_12 = {k for k in snapshots[1] if not torch.equal(snapshots[1][k], snapshots[2][k])}
    assert changed_12 and all(k.startswith("f_") for k in changed_12)
    changed_23 = {k for k in snapshots[2] if not torch.equal(snapshots[2][k], snapshots[3][k])}
    assert any(k.startswith("model.") for k in changed_23) and any(k.startswith("b_") for k in changed_23)


def test_fusion_warmup_needs_an_spsr_generator(tmp_path) -> None:
    cfg = tiny_config("esrgan", **{"run.fusion_warmup": 5})
    with pytest.raises(ConfigError, match="SPSR generator"):
        Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()


def test_init_from_a_psnr_run_fills_the_sr_branch(tmp_path) -> None:
    pre = tiny_config("psnr", **{"run.iterations": 2, "run.checkpoint_every": 2})
    Trainer(pre, tmp_path / "psnr", dataset=TinyPairs()).run()
    psnr_weights = load_file(tmp_path / "psnr" / "model.safetensors")
    cfg = tiny_config("g", **{"run.iterations": 1, "run.checkpoint_every": 1, "optim.lr_g": 1e-12,
                              "run.init": str(tmp_path / "psnr")})
    Trainer(cfg, tmp_path / "g", dataset=TinyPairs()).run()
    g = load_file(tmp_path / "g" / "model.safetensors")
    trunk = [k for k in psnr_weights if k.startswith("model.") and not k.startswith("model.10.")]
    assert trunk and all(torch.allclose(g[k], psnr_weights[k], atol=1e-9) for k in trunk)
    assert read_log(tmp_path / "g", "start")[0]["init"] == str(tmp_path / "psnr")


def test_run_folder_guards(tmp_path) -> None:
    cfg = tiny_config("psnr", **{"run.iterations": 2, "run.checkpoint_every": 2})
    Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()
    with pytest.raises(ConfigError, match="already at iteration 2"):
        Trainer(cfg, tmp_path / "run", resume=True, dataset=TinyPairs()).run()
    with pytest.raises(CheckpointError, match="nothing to resume"):
        Trainer(cfg, tmp_path / "empty", resume=True, dataset=TinyPairs()).run()
    (tmp_path / "broken" / "state").mkdir(parents=True)
    (tmp_path / "broken" / "state" / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read training state"):
        Trainer(cfg, tmp_path / "broken", resume=True, dataset=TinyPairs()).run()
    other = tiny_config("psnr", **{"run.iterations": 4, "model.nf": 12})
    with pytest.raises(CheckpointError, match="does not match this configuration"):
        Trainer(other, tmp_path / "run", resume=True, dataset=TinyPairs()).run()


def test_scale_mismatch_between_data_and_model(tmp_path) -> None:
    cfg = tiny_config("psnr", **{"model.scale": 2})
    with pytest.raises(ConfigError, match="x4 but the model is x2"):
        Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()


def test_learning_rate_halves_at_milestones(tmp_path) -> None:
    cfg = tiny_config("psnr", **{"run.iterations": 5, "optim.milestones": "2,4", "optim.lr_g": 1e-3,
                                 "run.checkpoint_every": 5})
    Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()
    lrs = [r["lr/G"] for r in read_log(tmp_path / "run", "train")]
    assert lrs == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])


class _NoGeneratorStage(Stage):
    """A stage that trains no generator (like an NSE pretext task) and writes its own file."""

    def __init__(self, cfg, rt) -> None:
        super().__init__(cfg, rt)
        net = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.net = self.add_network("F", net)
        self.add_optimizer("F", make_adam(net.parameters(), cfg.optim, 1e-2))

    def train_step(self, batch):
        loss = self.net(batch["lr"]).square().mean()
        self.rt.optimize(loss, "F")
        return {"f/loss": float(loss.detach())}

    def save_artifacts(self, run_dir, iteration, provenance) -> None:
        torch.save({"iteration": iteration, "F": self.module("F").state_dict()}, run_dir / "f.pt")


register_stage("no_generator", _NoGeneratorStage)
register_variant(Variant("no_generator", "no_generator", "test stage", lambda cfg: None))


def test_a_stage_without_a_generator_writes_its_own_artifacts_and_resumes(tmp_path) -> None:
    cfg = tiny_config("no_generator", **{"run.iterations": 2, "run.checkpoint_every": 1})
    Trainer(cfg, tmp_path / "run", dataset=TinyPairs()).run()
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert torch.load(tmp_path / "run" / "f.pt", weights_only=True)["iteration"] == 2
    cfg.run.iterations = 3
    assert Trainer(cfg, tmp_path / "run", resume=True, dataset=TinyPairs()).run().iteration == 3
    assert set(load_state(tmp_path / "run" / "state" / "last.pt")["networks"]) == {"F"}
    with pytest.raises(ConfigError, match="trains none"):
        Trainer(tiny_config("no_generator", **{"run.ema": 0.9}), tmp_path / "ema", dataset=TinyPairs()).run()
