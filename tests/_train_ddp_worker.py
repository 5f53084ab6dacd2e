"""Run by `torchrun --nproc_per_node 2` from test_train_ddp.py: train each GAN variant for a few
iterations under DistributedDataParallel (gloo, CPU) and record a checksum of each process's
generator, so the test can check the processes stayed in sync."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_fixtures import TinyPairs, tiny_config  # noqa: E402

from spsr.train.engine import Trainer  # noqa: E402

# The GAN variants of the training-engine issue; later variants test themselves the same way.
VARIANTS = ("esrgan", "g")


def main(out: Path) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    sums = {}
    for name in VARIANTS:
        cfg = tiny_config(name, **{"run.iterations": 2, "run.checkpoint_every": 2, "model.nb": 1,
                                   "data.batch_size": 4, "optim.lr_g": 1e-3})
        trainer = Trainer(cfg, out / name, dataset=TinyPairs(n=8))
        trainer.run()
        sums[name] = [float(p.detach().double().sum()) for p in trainer.generator.parameters()]
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, sums)
    if rank == 0:
        (out / "checksums.json").write_text(json.dumps(gathered))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
