"""experiments/portable.py: committed results carry no machine's absolute paths."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "portable", Path(__file__).resolve().parents[2] / "experiments" / "portable.py")
assert _SPEC is not None and _SPEC.loader is not None
portable = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(portable)


def test_paths_become_repo_or_dataset_relative(tmp_path: Path) -> None:
    root = tmp_path / "a long checkout"
    text = json.dumps({
        "run": f"{root}/experiments/runs/g/psnr",
        "other": "/elsewhere/wt-20/experiments/runs/nse/nse_j",
        "data": "/mnt/x/datasets/train/SunHays80",
        "tool": "/usr/bin/python3",
        "ratio": "3/4",
    })
    out = json.loads(portable.rewrite(text.replace(str(root), "/r/ck"), Path("/r/ck")))
    assert out == {"run": "experiments/runs/g/psnr", "other": "experiments/runs/nse/nse_j",
                   "data": "datasets/train/SunHays80", "tool": "/usr/bin/python3", "ratio": "3/4"}


def test_committed_results_hold_no_absolute_paths() -> None:
    results = Path(__file__).resolve().parents[2] / "experiments" / "results"
    for file in sorted(results.rglob("*")):
        if file.suffix in (".json", ".md", ".csv"):
            text = file.read_text(encoding="utf-8")
            assert portable.rewrite(text) == text, file
