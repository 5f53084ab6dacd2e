"""Run by `torchrun --nproc_per_node 2` from test_train_signals.py: only rank 1 is asked to stop
(as when a signal reaches one process first) and only rank 0's clock says a timed checkpoint is
due; every process must agree on both, or the collectives of the checkpoint would hang."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_fixtures import TinyPairs, tiny_config

from spsr.train.engine import Trainer


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    ticks = [0.0]

    def clock() -> float:  # rank 0: 40 s an iteration; rank 1: time stands still
        return ticks[0]

    def step(trainer: Trainer) -> None:
        if rank == 0:
            ticks[0] += 40.0
        if rank == 1 and trainer.iteration == 3:
            trainer.request_stop("SIGUSR1")

    cfg = tiny_config("psnr", **{"run.iterations": 10, "run.checkpoint_every": 100,
                                 "run.checkpoint_minutes": 1, "data.batch_size": 4})
    result = Trainer(cfg, out / "run", dataset=TinyPairs(n=8), clock=clock,
                     callbacks=[step]).run()
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, [result.iteration, result.reason])
    if rank == 0:
        (out / "results.json").write_text(json.dumps(gathered))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
