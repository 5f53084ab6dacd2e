"""The quick start's job as a user times it: ``spsr upscale --samples OUT`` (the bundled samples,
the bundled default model), whole processes, this tree against an earlier release.

The earlier release is a git revision of this repository (default: ``78c3662``, main just before
the engines of issue #33 were merged), checked out into a temporary worktree and run from there
with the same Python (``PYTHONPATH`` puts its ``spsr`` first). Each side has a cache folder of its
own (``SPSR_CACHE``); one untimed first run each (this tree's converts the model and records the
warm start), then alternating rounds of fresh processes, medians, and the ratio. Prints the CPU,
which engine and precision this tree's warm start runs (its record in the cache), how many
images its last run upscaled (its ``--json`` records) and whether each side imported PyTorch.

Run: ``python tests/benchmarks/bench_samples.py [--rounds 3] [--ref 78c3662] [-- extra upscale options]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_process import SPSR, run  # the CLI in a fresh process, timed (this folder's script)

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ref", default="78c3662", help="the earlier release's git revision")
    ap.add_argument("extra", nargs="*", help="more `spsr upscale` options for both sides")
    args = ap.parse_args()

    from spsr.cpu import cpu_model_name

    tmp = Path(tempfile.mkdtemp(prefix="bench_samples_"))
    old_tree = tmp / "old tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old_tree), args.ref],
                   check=True, capture_output=True)
    try:
        base_env = {k: v for k, v in os.environ.items() if k not in ("SPSR_ENGINE", "PYTHONPATH")}
        sides = {
            f"release {args.ref}": (
                {**base_env, "PYTHONPATH": str(old_tree), "SPSR_CACHE": str(tmp / "cache old")},
                [sys.executable, "-c", SPSR, "upscale", "--samples", str(tmp / "out old"), "--overwrite",
                 *args.extra]),
            "this tree": (
                {**base_env, "PYTHONPATH": str(REPO), "SPSR_CACHE": str(tmp / "cache new")},
                [sys.executable, "-c", SPSR, "upscale", "--samples", str(tmp / "out new"), "--overwrite",
                 "--json", *args.extra]),
        }
        print(f"CPU: {cpu_model_name()}; os.cpu_count() {os.cpu_count()}; "
              f"`spsr upscale --samples OUT {' '.join(args.extra)}`".rstrip())
        for name, (env, cmd) in sides.items():
            took, _ = run(cmd, env, cwd=tmp)  # python -c puts the working folder first on the path
            print(f"  first run, {name}: {took:.1f} s (untimed below)")
        where = subprocess.run([sys.executable, "-c", "import spsr; print(spsr.__file__)"], capture_output=True,
                               text=True, env=sides[f"release {args.ref}"][0], cwd=tmp, check=True).stdout.strip()
        if not where.startswith(str(old_tree)):
            raise SystemExit(f"the release's side imports spsr from {where}, not from its worktree")
        times: dict[str, list[float]] = {name: [] for name in sides}
        torch_loaded: dict[str, bool] = {}
        records: list[dict] = []
        for _ in range(args.rounds):
            for name, (env, cmd) in sides.items():
                took, out = run(cmd, env, cwd=tmp)
                times[name].append(took)
                torch_loaded[name] = "TORCH-FREE" not in out
                if name == "this tree":
                    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        base = statistics.median(times[f"release {args.ref}"])
        print(f"  medians of {args.rounds} alternating rounds:")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"    {name:20s} {med:6.2f} s  {base / med:5.2f}×  ({'/'.join(f'{t:.2f}' for t in ts)})  "
                  f"{'PyTorch' if torch_loaded[name] else 'no PyTorch'}")
        warm = [json.loads(f.read_text()) for f in (tmp / "cache new" / "engines" / "warm").glob("*.json")]
        ran = ", ".join(f"{w['engine']} {w['precision']}" for w in warm) or "PyTorch (no warm-start record)"
        done = sum(r.get("status") == "done" for r in records)
        print(f"  this tree ran: {ran}; {done} of {len(records)} images done in its last run")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old_tree)],
                       capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
