"""The real thing behind tests/test_write_failures.py: spsr on a full and on a read-only file system.

Mounts a 3 MB tmpfs (root only), then checks, with the real command line in subprocesses:

1. ``spsr prepare-data`` of 12 photos into it: the disk fills mid-store. Expected: exit 1, one
   ``error:`` line naming the ``.partial`` file and "no space left on device (ENOSPC)", no
   traceback, no segmentation fault, no store and no partial file left; after freeing the space
   (fewer patches: --step 16 --limit 2), prepare-data builds a complete store there.
2. ``spsr upscale`` of the same photos into the nearly full file system: one line, no traceback,
   every file written is whole (no temporary file left).
3. ``spsr eval --json`` into the file system remounted read-only: fails before scoring, one line
   naming "read-only file system (EROFS)".

It needs root (``mount``) and says why it skipped otherwise (exit 0, so CI can run it anywhere;
``--require`` makes a skip exit 2). Nothing outside the temporary mount point is written but a
temporary folder of inputs.

Run: ``sudo .venv/bin/python tests/benchmarks/check_small_fs.py``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _spsr(*args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "spsr_cli.app", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=1800, check=False)


def _one_line(proc: subprocess.CompletedProcess[str], *needles: str) -> list[str]:
    """Problems with a failure that should be exit 1 with one error line holding ``needles``."""
    problems = []
    if proc.returncode != 1:
        problems.append(f"exit {proc.returncode}, expected 1")
    if "Traceback" in proc.stderr or "Exception ignored" in proc.stderr:
        problems.append("a traceback on stderr")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    if len(errors) != 1:
        problems.append(f"{len(errors)} error lines")
    for needle in needles:
        if not any(needle in line for line in errors):
            problems.append(f"no {needle!r} in the error line")
    return problems


def _mount(where: Path, size: str) -> str | None:
    """Mount a tmpfs; the reason when it cannot."""
    if os.geteuid() != 0:
        return "needs root to mount a small file system"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"mount failed: {proc.stderr.strip() or proc.returncode}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--require", action="store_true", help="exit 2 (not 0) when it cannot mount")
    args = parser.parse_args()
    from skimage import data as skdata

    from spsr.data.image_io import write_image

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos = root / "in"
        photos.mkdir()
        astro = skdata.astronaut()
        for i in range(12):
            write_image(photos / f"p{i:02d}.png", np.ascontiguousarray(np.roll(astro, 37 * i, 1)[:256, :256]))
        mnt = root / "mnt"
        mnt.mkdir()
        why = _mount(mnt, "3m")
        if why is not None:
            print(f"SKIPPED: {why}")
            return 2 if args.require else 0
        failures: list[str] = []
        try:
            store = mnt / "s.h5"
            proc = _spsr("prepare-data", photos, "-o", store, "-s", "2", "--patch", "16", "--step", "4", "-j", "0")
            problems = _one_line(proc, "s.h5.partial", "no space left on device (ENOSPC)")
            if store.exists() or store.with_name("s.h5.partial").exists():
                problems.append("a store or partial file was left")
            print(f"1. prepare-data on a full disk: {problems if problems else 'ok'}")
            print(f"   {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '(no stderr)'}")
            failures += problems
            proc = _spsr("prepare-data", photos, "-o", store, "-s", "2", "--patch", "16", "--step", "16",
                         "-j", "0", "--limit", "2")
            ok = proc.returncode == 0 and store.is_file()
            print(f"   re-run with room for it: {'ok' if ok else proc.stderr.strip()}")
            failures += [] if ok else ["the re-run failed"]

            filler = mnt / "filler"
            free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
            filler.write_bytes(b"\0" * max(0, free - 200_000))
            out = mnt / "up"
            proc = _spsr("upscale", photos, out, "--weights", "psnr", "--tile", "0", "--device", "cpu")
            problems = _one_line(proc, "no space left on device (ENOSPC)")
            left = [p.name for p in out.rglob("*") if p.name.startswith(".")] if out.exists() else []
            if left:
                problems.append(f"temporary files left: {left}")
            print(f"2. upscale on a nearly full disk: {problems if problems else 'ok'}")
            print(f"   {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '(no stderr)'}")
            failures += problems
            filler.unlink()

            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
            proc = _spsr("eval", photos, "--hr", photos, "--metrics", "psnr", "--json", mnt / "scores.json")
            problems = _one_line(proc, "read-only file system (EROFS)")
            print(f"3. eval --json on a read-only file system: {problems if problems else 'ok'}")
            print(f"   {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else '(no stderr)'}")
            failures += problems
        finally:
            subprocess.run(["umount", str(mnt)], check=False)
        print("PASSED" if not failures else f"FAILED: {failures}")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
