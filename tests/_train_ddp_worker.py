"""Run by `torchrun --nproc_per_node 2` from test_train_ddp.py: train each GAN variant for a few
iterations under DistributedDataParallel (gloo, CPU) and record a checksum of each process's
generator, so the test can check the processes stayed in sync; and train the structure-loss
variants p / j / r (whose pixel-wise structure loss is a sum) in configurations whose result must
not depend on the number of processes, which the test then repeats in one process.

    _train_ddp_worker.py OUT NSE_CONTRASTIVE NSE_JIGSAW"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_fixtures import TinyPairs, tiny_config

from spsr.train.engine import Trainer

# The GAN variants of the training-engine issue; later variants test themselves the same way.
VARIANTS = ("esrgan", "g")
# Structure-loss variants trained without D_SF (whose RaGAN means and BatchNorm statistics are
# per process, as in any DDP GAN), with β_SF large enough that the summed term steers training.
STRUCTURE_VARIANTS = ("p", "j", "r")


def structure_config(name: str, nse: dict[str, str]):  # -> TrainConfig
    """The configuration each structure variant trains with, in 2 processes here and 1 in the test."""
    overrides = {"run.iterations": 3, "run.checkpoint_every": 3, "model.nb": 1, "data.batch_size": 4,
                 "optim.lr_g": 1e-3, "structure.gamma": 0.0, "structure.beta": 1e-3}
    if name in nse:
        overrides["structure.nse"] = nse[name]
    return tiny_config(name, **overrides)


def main(out: Path, nse: dict[str, str]) -> None:
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
    for name in STRUCTURE_VARIANTS:
        Trainer(structure_config(name, nse), out / name, dataset=TinyPairs(n=8)).run()
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, sums)
    if rank == 0:
        (out / "checksums.json").write_text(json.dumps(gathered))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), {"p": sys.argv[2], "j": sys.argv[3]})
