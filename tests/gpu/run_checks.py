"""Every CUDA check of spsr in one run: the CUDA-marked tests, a real out-of-memory recovery, and
the full-size SPSR-G throughput; a short report on stdout and the whole of it as JSON.

Steps (each in its own process with its own time limit, inside a total budget; a failing or
timed-out step is recorded and the next one still runs):

1. ``environment``: torch, CUDA, cuDNN and NCCL versions, the GPU, bf16 support;
2. ``cuda_tests``: ``pytest -m cuda`` on the test files that hold CUDA-marked tests;
3. ``oom_recovery``: ``tests/gpu/oom_check.py``;
4. ``throughput``: ``tests/benchmarks/bench_gpu.py``.

``--dry-run`` runs the same steps on the CPU at tiny sizes (GPUs hidden; the CUDA tests run on the
CPU through ``SPSR_CUDA_TESTS_ON_CPU=1``, fp16 cases skipped), which tests this script.

    python tests/gpu/run_checks.py [--dry-run] [--budget SECONDS] [REPORT.json]

The report goes to REPORT.json, else ``$OUT/gpu_report.json`` when ``$OUT`` is set, else
``./gpu_report.json``. Exit status 0 when every step passed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable

#: Time limit of each step in seconds (on an H200; the whole is capped by --budget).
LIMITS = {"environment": 60, "cuda_tests": 240, "oom_recovery": 90, "throughput": 150}

ENV_PROBE = r"""
import json, platform, torch
info = {"python": platform.python_version(), "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
try:
    import spsr
    info["spsr"] = spsr.__version__
except Exception as exc:
    info["spsr"] = f"not importable: {exc}"
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count(),
                capability=f"{p.major}.{p.minor}", memory_gib=round(p.total_memory / 2**30, 1),
                bf16=torch.cuda.is_bf16_supported())
    try:
        info["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception as exc:
        info["nccl"] = f"unavailable: {exc}"
print(json.dumps(info))
"""


def _tail(text: str, n: int = 3000) -> str:
    return text[-n:] if len(text) > n else text


def run_step(name: str, cmd: list[str], env: dict[str, str], limit: float) -> dict[str, Any]:
    """Run one step's command; its status, time, return code and the end of its output."""
    t0 = time.monotonic()
    step: dict[str, Any] = {"command": " ".join(cmd), "limit_s": round(limit)}
    if limit < 5:
        return {**step, "status": "skipped", "reason": "no time left in the budget", "seconds": 0.0}
    # Its own session, so a timeout ends the whole process group (pytest's torchrun children too,
    # which would otherwise keep GPU memory during the next steps).
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=limit)
        step.update(returncode=proc.returncode, status="passed" if proc.returncode == 0 else "failed",
                    output_tail=_tail(out))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        step.update(status="timeout", output_tail=_tail(out or ""))
    step["seconds"] = round(time.monotonic() - t0, 1)
    print(f"[{name}] {step['status']} in {step['seconds']:.0f} s", flush=True)
    return step


def parse_junit(path: Path) -> dict[str, Any]:
    """Counts and per-test outcomes from pytest's JUnit XML."""
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    tests: list[dict[str, Any]] = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (node.get("message") or "") + ("\n" + node.text if node.text and tag != "skipped" else "")
                break
        entry: dict[str, Any] = {"test": f"{case.get('classname', '')}::{case.get('name', '')}",
                                 "outcome": outcome, "seconds": round(float(case.get("time") or 0), 2)}
        if message:
            entry["message"] = _tail(message, 1500)
        tests.append(entry)
    counts: dict[str, int] = {}
    for t in tests:
        counts[t["outcome"]] = counts.get(t["outcome"], 0) + 1
    return {"counts": counts, "tests": tests}


def _commit() -> str:
    """The checkout's git commit (with ``+dirty`` for local changes), or "" without git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def cuda_test_files() -> list[str]:
    """The test files that hold CUDA-marked tests."""
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                  if "mark.cuda" in p.read_text(encoding="utf-8", errors="ignore"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", nargs="?", type=Path, help="JSON report path")
    ap.add_argument("--dry-run", action="store_true", help="run the steps on the CPU at tiny sizes")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("SPSR_GPU_BUDGET", "0")),
                    help="total seconds for all steps (default 480; 900 for a dry run on a slow CPU)")
    args = ap.parse_args(argv)
    dry = args.dry_run or os.environ.get("SPSR_GPU_DRY_RUN") == "1"
    args.budget = args.budget or (900.0 if dry else 480.0)
    report_path = args.report or (Path(os.environ["OUT"]) / "gpu_report.json" if os.environ.get("OUT")
                                  else Path("gpu_report.json"))
    report_path = report_path.resolve()

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        env.pop(name, None)
    dry_flag: list[str] = []
    if dry:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU even on a GPU machine
        env["SPSR_CUDA_TESTS_ON_CPU"] = "1"
        env.setdefault("OMP_NUM_THREADS", "1")
        dry_flag = ["--dry-run"]

    start = time.monotonic()
    report: dict[str, Any] = {"dry_run": dry, "host": platform.node(), "budget_s": args.budget,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": _commit(),
                              "steps": {}}
    steps = report["steps"]

    def remaining(name: str) -> float:
        return min(LIMITS[name] * (4 if dry else 1), args.budget - (time.monotonic() - start))

    with tempfile.TemporaryDirectory(prefix="spsr_gpu_") as tmp_name:
        tmp = Path(tmp_name)
        steps["environment"] = s = run_step("environment", [PY, "-c", ENV_PROBE], env, remaining("environment"))
        if s["status"] == "passed":
            s["info"] = json.loads(s.pop("output_tail").strip().splitlines()[-1])
            report["environment"] = s["info"]
            if not dry and not s["info"]["cuda_available"]:
                print("torch sees no CUDA GPU here: run with --dry-run to test on the CPU", file=sys.stderr)

        junit = tmp / "junit.xml"
        files = cuda_test_files()
        # Set before the tests' process creates its cuBLAS handle: the bit-exact resume test
        # turns deterministic algorithms on, and cuBLAS is deterministic only with this workspace.
        test_env = {**env, "CUBLAS_WORKSPACE_CONFIG": env.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8")}
        steps["cuda_tests"] = s = run_step(
            "cuda_tests",
            [PY, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
             "-o", "addopts=", *files], test_env, remaining("cuda_tests"))
        s["files"] = files
        s.update(parse_junit(junit))
        if s["status"] == "passed" and not dry and s.get("counts", {}).get("skipped"):
            s["note"] = "some CUDA tests skipped on a GPU machine: see tests[].message"

        oom_json = tmp / "oom.json"
        steps["oom_recovery"] = s = run_step(
            "oom_recovery", [PY, "tests/gpu/oom_check.py", "--json", str(oom_json), *dry_flag], env,
            remaining("oom_recovery"))
        if oom_json.is_file():
            s["result"] = json.loads(oom_json.read_text())

        bench_json = tmp / "bench.json"
        steps["throughput"] = s = run_step(
            "throughput", [PY, "tests/benchmarks/bench_gpu.py", "--json", str(bench_json), *dry_flag],
            env, remaining("throughput"))
        if bench_json.is_file():
            s["result"] = json.loads(bench_json.read_text())

    report["seconds"] = round(time.monotonic() - start, 1)
    report["passed"] = all(s["status"] == "passed" for s in steps.values())
    if not dry and not report.get("environment", {}).get("cuda_available"):
        report["passed"] = False  # the CUDA tests would all have skipped: nothing was checked
        report["problem"] = "torch sees no CUDA GPU on this machine"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_report = report_path.with_name(f".{report_path.name}.tmp")
    tmp_report.write_text(json.dumps(report, indent=1))
    os.replace(tmp_report, report_path)
    print(summary(report))
    print(f"report: {report_path}")
    return 0 if report["passed"] else 1


def summary(report: dict[str, Any]) -> str:
    """The short human report."""
    env = report.get("environment", {})
    dry = " (DRY RUN on the CPU)" if report["dry_run"] else ""
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [f"spsr GPU checks{dry}: {verdict} in {report['seconds']:.0f} s",
             (f"  {env.get('gpu', 'no GPU')}, torch {env.get('torch')}, CUDA {env.get('cuda')}, "
              f"cuDNN {env.get('cudnn')}, NCCL {env.get('nccl', '-')}")]
    if report.get("problem"):
        lines.append(f"  problem: {report['problem']}")
    steps = report["steps"]
    for name, s in steps.items():
        extra = ""
        if name == "cuda_tests" and s.get("counts"):
            extra = ", ".join(f"{v} {k}" for k, v in sorted(s["counts"].items()))
        if name == "oom_recovery" and "result" in s:
            r = s["result"]
            extra = (f"{r.get('ooms', 0)} OOMs, tile {r.get('start_tile')}→{r.get('final_tile')}, "
                     f"batch {r.get('start_batch')}→{r.get('final_batch')}, vs untiled max "
                     f"{r['capped_vs_whole']['max_diff_levels']:.3f} levels")
        lines.append(f"  {name:13s} {s['status']:8s} {s['seconds']:6.0f} s  {extra}")
        for t in s.get("tests", []):
            if t["outcome"] in ("failed", "error"):
                lines.append(f"      {t['outcome'].upper()} {t['test']}: {t.get('message', '').splitlines()[0][:150]}")
    bench = steps.get("throughput", {}).get("result")
    if bench:
        for kind, unit, key in (("train", "it/s", "it_per_s"), ("upscale", "MP/s", "mp_per_s")):
            for r in bench.get(kind, []):
                value = f"{r[key]:9.3f} {unit}" if key in r else f"FAILED {r.get('error', '')[:80]}"
                peak = f"  peak {r['peak_mib']:.0f} MiB" if r.get("peak_mib") else ""
                lines.append(f"  {kind:8s}{r['config']:26s}{value}{peak}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
