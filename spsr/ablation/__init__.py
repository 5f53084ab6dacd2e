"""Ablation grids: train configurations alike, score them, and tabulate them as the papers do.

Public API::

    from spsr.ablation import (AblationInputs, EvalSpec, eval_datasets, get_preset, load_grid,
                               plan_grid, run_plan, AblationTable, write_tables)
    grid = get_preset("g-components")          # or load_grid("my_grid.toml")
    inputs = AblationInputs(data="data/div2k_x4.h5", iterations=5000,
                            inits={"default": "runs/psnr"})
    plan = plan_grid(grid, "ablations/g", inputs)
    rows = run_plan(plan, spec, suite)         # spec: EvalSpec, suite: spsr.metrics.MetricSuite

``spsr ablate`` (:mod:`spsr_cli.cmd_ablate`) does this through :mod:`spsr.ablation.study`
(``plan_study`` → ``run_plan`` → ``study_table``) and writes the table files.
Names are loaded on first use, so reading the presets does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "EvalDataset": "scoring",
    "EvalSpec": "scoring",
    "eval_datasets": "scoring",
    "eval_key": "scoring",
    "evaluate_row": "scoring",
    "AblationConfig": "grid",
    "AblationGrid": "grid",
    "grid_from_dict": "grid",
    "load_grid": "grid",
    "parse_slots": "grid",
    "slugify": "grid",
    "AblationHooks": "hooks",
    "AblationInputs": "plan",
    "PlannedRun": "plan",
    "grid_scale": "plan",
    "plan_grid": "plan",
    "resolve_row": "plan",
    "get_preset": "presets",
    "preset_names": "presets",
    "RowResult": "runner",
    "run_plan": "runner",
    "AblationTable": "table",
    "best_marks": "table",
    "write_tables": "table",
    "StudyPlan": "study",
    "missing_weights": "study",
    "plan_study": "study",
    "study_table": "study",
}

__all__ = [
    "AblationConfig",
    "AblationGrid",
    "AblationHooks",
    "AblationInputs",
    "AblationTable",
    "EvalDataset",
    "EvalSpec",
    "PlannedRun",
    "RowResult",
    "StudyPlan",
    "best_marks",
    "eval_datasets",
    "eval_key",
    "evaluate_row",
    "get_preset",
    "grid_from_dict",
    "grid_scale",
    "load_grid",
    "missing_weights",
    "parse_slots",
    "plan_grid",
    "plan_study",
    "preset_names",
    "resolve_row",
    "run_plan",
    "slugify",
    "study_table",
    "write_tables",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"spsr.ablation.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'spsr.ablation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
