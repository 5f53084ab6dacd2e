#!/usr/bin/env bash
# Every CUDA check of spsr in one run (CUDA-marked tests, a real out-of-memory recovery, full-size
# SPSR-G throughput), about 8 minutes at most on one GPU; prints a short report and writes it as
# JSON. See tests/gpu/run_checks.py for the steps.
#
#   tests/gpu/run_checks.sh [--dry-run] [--budget SECONDS] [REPORT.json]
#
# REPORT.json defaults to $OUT/gpu_report.json when $OUT is set, else ./gpu_report.json.
# --dry-run (or SPSR_GPU_DRY_RUN=1) runs the same steps on the CPU at tiny sizes.
# Python: $PYTHON, else python3 / python on PATH. Nothing is installed unless spsr (this checkout)
# or pytest cannot be imported; then `pip install -e .` / `pip install pytest` only.
set -u
REPO="$(cd "$(dirname "$0")/../.." && pwd)" || exit 2
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    PY="$(command -v python3 || command -v python || true)"
fi
if [ -z "$PY" ]; then
    echo "run_checks.sh: no python found (set PYTHON=/path/to/python)" >&2
    exit 2
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import spsr, spsr_cli.app" >/dev/null 2>&1; then
    echo "run_checks.sh: spsr's dependencies are missing: pip install -e ." >&2
    "$PY" -m pip install -q -e "$REPO" || exit 2
fi
if ! "$PY" -c "import pytest" >/dev/null 2>&1; then
    echo "run_checks.sh: pytest is missing: pip install pytest" >&2
    "$PY" -m pip install -q pytest || exit 2
fi
exec "$PY" "$REPO/tests/gpu/run_checks.py" "$@"
