"""Training rate under three CPU thread settings: one thread, PyTorch's default, and spsr's plan.

One configuration per process (thread pools are per process): a PSNR pre-training of the built-in
models' size (SPSR-G nf 32, nb 6, ×4, batch 8 of 16×16 LR crops, L1, fp32) on random data, with
2 data-loader workers, as ``spsr pretrain-psnr`` runs it. Reported: iterations/s of the last
logged interval and the thread plan's own line. On a machine other processes keep busy the plan
picks fewer threads than the default; on an idle one it picks the cores.

    python tests/benchmarks/bench_threads.py                # all three settings
    python tests/benchmarks/bench_threads.py --iters 24 --configs plan,default

Numbers on a shared machine are noisy: run it more than once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = ("one", "default", "plan")


def child(name: str, iters: int) -> dict[str, object]:
    import torch
    from torch.utils.data import Dataset

    from spsr.train.config import apply_overrides
    from spsr.train.engine import Trainer
    from spsr.train.log import Reporter, read_log
    from spsr.train.variants import preset

    class RandomPairs(Dataset):
        scale = 4

        def __len__(self) -> int:
            return 256

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            g = torch.Generator().manual_seed(i)
            hr = torch.rand(3, 64, 64, generator=g)
            return {"lr": torch.nn.functional.avg_pool2d(hr[None], 4)[0], "hr": hr}

    class Notes(Reporter):
        line = ""

        def note(self, message: str) -> None:
            Notes.line = message

    if name == "default":
        # PyTorch's own choice, as before the plan: fix it so the plan keeps it.
        os.environ["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    cfg = preset("psnr")
    apply_overrides(cfg, {
        "model.arch": "spsr", "model.nf": 32, "model.nb": 6, "model.extra.image_skip": True,
        "data.batch_size": 8, "data.workers": 2, "run.iterations": iters,
        "run.log_every": max(1, iters // 3), "run.checkpoint_every": 10 * iters,
        "run.amp": "off", "run.device": "cpu",
    })
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(cfg, Path(tmp) / "run", dataset=RandomPairs(), reporter=Notes()).run()
        last = read_log(Path(tmp) / "run", "train")[-1]
    return {"config": name, "threads": torch.get_num_threads(), "it_per_s": round(last["it_per_s"], 3),
            "plan": Notes.line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--iters", type=int, default=12, help="training iterations per setting")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.iters)))
        return
    for name in args.configs.split(","):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        env["PYTHONPATH"] = str(REPO)
        if name == "one":
            env["OMP_NUM_THREADS"] = "1"
        out = subprocess.run([sys.executable, __file__, "--child", name, "--iters", str(args.iters)],
                             env=env, capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
