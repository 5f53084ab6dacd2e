"""Ablation grids: train configurations alike, score them, and tabulate them as the papers do.

Public API::

    from spsr.ablation import (AblationInputs, EvalSpec, eval_datasets, get_preset, load_grid,
                               plan_grid, run_plan, AblationTable, write_tables)
    grid = get_preset("g-components")          # or load_grid("my_grid.toml")
    inputs = AblationInputs(data="data/div2k_x4.h5", iterations=5000,
                            inits={"default": "runs/psnr"})
    plan = plan_grid(grid, "ablations/g", inputs)
    rows = run_plan(plan, spec, suite)         # spec: EvalSpec, suite: spsr.metrics.MetricSuite

``spsr ablate`` (:mod:`spsr_cli.cmd_ablate`) does exactly this and writes the table files.
"""

from spsr.ablation.evaluate import EvalDataset, EvalSpec, eval_datasets, eval_key, evaluate_row
from spsr.ablation.grid import (
    AblationConfig,
    AblationGrid,
    grid_from_dict,
    load_grid,
    parse_slots,
    slugify,
)
from spsr.ablation.plan import AblationInputs, PlannedRun, grid_scale, plan_grid, resolve_row
from spsr.ablation.presets import get_preset, preset_names
from spsr.ablation.runner import AblationHooks, RowResult, run_plan
from spsr.ablation.table import AblationTable, best_marks, write_tables

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
    "best_marks",
    "eval_datasets",
    "eval_key",
    "evaluate_row",
    "get_preset",
    "grid_from_dict",
    "grid_scale",
    "load_grid",
    "parse_slots",
    "plan_grid",
    "preset_names",
    "resolve_row",
    "run_plan",
    "slugify",
    "write_tables",
]
