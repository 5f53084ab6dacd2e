"""The batch stream: reproducible order and augmentation, exact resume, world-size independence."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from _train_fixtures import TinyPairs, one_thread  # noqa: F401 (autouse fixture)

from spsr.errors import ConfigError
from spsr.train.batches import BatchStream, seeded_global_rngs


def _take(stream: BatchStream, n: int) -> list[dict[str, torch.Tensor]]:
    return [next(stream) for _ in range(n)]


def _same(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> bool:
    return len(a) == len(b) and all(torch.equal(x["hr"], y["hr"]) for x, y in zip(a, b, strict=True))


def test_stream_is_reproducible_and_crosses_epochs() -> None:
    data = TinyPairs(n=6)
    a = _take(BatchStream(data, 2, seed=5), 7)  # 3 batches per epoch: crosses two epoch ends
    b = _take(BatchStream(data, 2, seed=5), 7)
    c = _take(BatchStream(data, 2, seed=6), 7)
    assert _same(a, b) and not _same(a, c)
    first_epoch = torch.cat([x["lr"] for x in a[:3]])
    assert first_epoch.shape[0] == 6  # every sample once per epoch


def test_resume_from_saved_position_gives_the_same_batches() -> None:
    data = TinyPairs(n=6)
    full = _take(BatchStream(data, 2, seed=1), 8)
    first = BatchStream(data, 2, seed=1)
    head = _take(first, 4)
    state = first.state_dict()
    assert state == {"epoch": 1, "position": 1}
    second = BatchStream(data, 2, seed=1)
    second.load_state_dict(state)
    assert _same(head + _take(second, 4), full)


def test_two_processes_see_the_rows_of_one_global_batch() -> None:
    data = TinyPairs(n=8)
    single = _take(BatchStream(data, 4, seed=2), 3)
    rank0 = _take(BatchStream(data, 4, seed=2, rank=0, world_size=2), 3)
    rank1 = _take(BatchStream(data, 4, seed=2, rank=1, world_size=2), 3)
    for s, r0, r1 in zip(single, rank0, rank1, strict=True):
        assert torch.equal(torch.cat([r0["hr"], r1["hr"]]), s["hr"])


def test_worker_processes_change_nothing() -> None:
    data = TinyPairs(n=6)
    assert _same(_take(BatchStream(data, 2, seed=3, workers=2), 4), _take(BatchStream(data, 2, seed=3), 4))


def test_per_sample_seeding_leaves_global_generators_untouched() -> None:
    torch.manual_seed(11)
    random.seed(11)
    np.random.seed(11)
    expected = (torch.rand(1).item(), random.random(), np.random.rand())
    torch.manual_seed(11)
    random.seed(11)
    np.random.seed(11)
    with seeded_global_rngs(123):
        torch.rand(5), random.random(), np.random.rand(3)
    assert (torch.rand(1).item(), random.random(), np.random.rand()) == expected


def test_bad_batch_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="split evenly"):
        BatchStream(TinyPairs(n=8), 3, world_size=2)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        BatchStream(TinyPairs(n=2), 4)
