"""MoA as a data option of every variant: the engine augments each batch before the stage sees
it, reproducibly per iteration, at HR size for stages whose generator takes it (tiny, CPU)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest
import torch
from _train_fixtures import TinyPairs, one_thread, tiny_config  # noqa: F401 (autouse fixture)

from spsr.archs import build_model
from spsr.data.moa import MoA, nearest_upsample
from spsr.errors import ConfigError
from spsr.train.engine import Trainer
from spsr.train.moa import BatchMoA
from spsr.train.stage import Stage
from spsr.train.variants import Variant, register_stage, register_variant


class _RecordingStage(Stage):
    """Keeps every batch it is given; trains nothing."""

    seen: ClassVar[list[dict[str, torch.Tensor]]] = []

    def __init__(self, cfg, rt) -> None:
        super().__init__(cfg, rt)
        spec = cfg.model.spec()
        self.add_network("G", build_model(spec), export_spec=spec)

    def train_step(self, batch):
        type(self).seen.append({k: v.clone() for k, v in batch.items()})
        return {"probe": 0.0}


class _RecordingUpsampledStage(_RecordingStage):
    takes_upsampled_lr = True


def _configure(cfg) -> None:
    cfg.model.arch = "rrdb"


register_stage("moa_probe", _RecordingStage)
register_stage("moa_probe_up", _RecordingUpsampledStage)
register_variant(Variant("moa_probe", "moa_probe", "test stage", _configure))
register_variant(Variant("moa_probe_up", "moa_probe_up", "test stage", _configure))


def _batches(variant: str, tmp_path, **overrides: object) -> list[dict[str, torch.Tensor]]:
    stage = _RecordingUpsampledStage if variant.endswith("_up") else _RecordingStage
    stage.seen = []
    cfg = tiny_config(variant, **{"run.iterations": 3, "run.checkpoint_every": 3, **overrides})
    Trainer(cfg, tmp_path / f"{variant}_{len(list(tmp_path.iterdir()))}", dataset=TinyPairs(n=6)).run()
    return stage.seen


def _channel_permutation(a: torch.Tensor, b: torch.Tensor) -> tuple[int, ...] | None:
    for perm in itertools.permutations(range(3)):
        if torch.equal(a, b[:, list(perm)]):
            return perm
    return None


@pytest.mark.parametrize("variant", ["moa_probe", "moa_probe_up"])
def test_the_stage_sees_moa_batches_at_the_size_its_generator_takes(tmp_path, variant: str) -> None:
    raw = _batches(variant, tmp_path)
    moa = _batches(variant, tmp_path, **{"data.moa": True, "data.moa_ops": "rgb"})
    assert len(raw) == len(moa) == 3
    perms = []
    for plain, mixed in zip(raw, moa, strict=True):
        lr = nearest_upsample(plain["lr"], 4) if variant.endswith("_up") else plain["lr"]
        assert mixed["lr"].shape == lr.shape
        perm = _channel_permutation(mixed["hr"], plain["hr"])
        assert perm is not None and torch.equal(mixed["lr"], lr[:, list(perm)])
        perms.append(perm)
    assert any(p != (0, 1, 2) for p in perms)  # it did augment
    again = _batches(variant, tmp_path, **{"data.moa": True, "data.moa_ops": "rgb"})
    assert all(torch.equal(a["hr"], b["hr"]) for a, b in zip(moa, again, strict=True))


def test_batch_moa_depends_only_on_iteration_and_rank() -> None:
    hr = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    batch = {"lr": torch.nn.functional.avg_pool2d(hr, 4), "hr": hr}
    moa = MoA(4, ops=("mixup", "cutmix", "cutblur"))
    aug = BatchMoA(moa, seed=3, rank=0, upsample_lr=True)
    first = aug(batch, 7)
    torch.rand(5)  # global generators play no part
    assert torch.equal(aug(batch, 7)["lr"], first["lr"]) and first["lr"].shape == hr.shape
    others = [aug(batch, i)["lr"] for i in range(1, 5)] + [BatchMoA(moa, 3, 1, True)(batch, 7)["lr"]]
    assert any(not torch.equal(o, first["lr"]) for o in others)
    with pytest.raises(ConfigError, match="desubpixel head"):
        BatchMoA(MoA(4, ops=("cutblur",)), seed=0)


def test_moa_options_are_validated(tmp_path) -> None:
    with pytest.raises(ConfigError, match="moa_ops"):
        Trainer(tiny_config("moa_probe", **{"data.moa_ops": "rgb,sharpen"}), tmp_path / "a")
    with pytest.raises(ConfigError, match="moa_prob"):
        Trainer(tiny_config("moa_probe", **{"data.moa_prob": 1.5}), tmp_path / "b")
