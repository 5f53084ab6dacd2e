"""Runs tests/engines/native_runtimes/ (the OpenVINO and ONNX Runtime engine and export tests) in a pytest
process of its own: those runtimes' thread pools and fork handlers make any later fork of the
process that loaded them crash (measured: the training tests after them ended the whole run with a
segmentation fault). Every test in that folder still runs and must pass; its report is shown here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _hang_guard import HANG_GUARD_S

FOLDER = Path(__file__).resolve().parent / "native_runtimes"


def test_the_engine_and_export_tests_pass_in_their_own_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(FOLDER.parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(FOLDER),
         "--basetemp", str(tmp_path / "pytest"), str(FOLDER)],
        capture_output=True, text=True, env=env, timeout=HANG_GUARD_S, check=False,
    )
    report = run.stdout[-6000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and " failed" not in run.stdout, report
