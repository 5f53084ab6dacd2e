"""The engine and export tests load OpenVINO and ONNX Runtime into the test process. Their thread
pools and fork handlers make later forks of that process (DataLoader workers, torchrun) crash it
with a segmentation fault, so these tests run in a pytest process of their own:
tests/engines/test_native_runtimes.py starts it, and the main run does not collect this folder."""

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS))  # the shared helpers (_train_fixtures, _hang_guard, ...)

# The suite's own fixtures (offline fetches, tiny weights, no SIGCHLD handler left behind).
_spec = importlib.util.spec_from_file_location("spsr_suite_conftest", TESTS / "conftest.py")
assert _spec is not None and _spec.loader is not None
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)
globals().update({k: v for k, v in vars(_suite).items() if not k.startswith("__") and k != "collect_ignore"})
