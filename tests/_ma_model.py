"""A hand-made Ma et al. ``model.mat`` (randomforest-matlab forests and the linear weights), so the
Ma / PI code runs without the published file (shared by tests/metrics/test_metrics_nrqm.py and
tests/cli/test_working_folder_cli.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io


def make_forest(trees: list[list[tuple[int, int, int, float, float]]], n_nodes: int) -> dict:
    """randomforest-matlab fields from trees given as rows (lDau, rDau, mbest, upper, avnode), 1-based."""
    fields = {k: np.zeros((n_nodes, len(trees))) for k in ("lDau", "rDau", "mbest", "upper", "avnode")}
    status = np.zeros((n_nodes, len(trees)), np.int8)
    for t, nodes in enumerate(trees):
        for k, (l_dau, r_dau, var, upper, value) in enumerate(nodes):
            fields["lDau"][k, t], fields["rDau"][k, t], fields["mbest"][k, t] = l_dau, r_dau, var
            fields["upper"][k, t], fields["avnode"][k, t] = upper, value
            status[k, t] = -1 if l_dau == 0 else 1
    return {**fields, "nodestatus": status, "nrnodes": float(n_nodes), "ntree": float(len(trees)),
            "ndtree": np.array([len(n) for n in trees], float), "coef": np.zeros(2), "mtry": 6.0}


# Tree 1: x1 <= 0.5 ? 1 : 3.  Tree 2: x3 <= 10 ? (x2 <= -1 ? 5 : 7) : 11.
HAND_TREES = [
    [(2, 3, 1, 0.5, 0.0), (0, 0, 0, 0.0, 1.0), (0, 0, 0, 0.0, 3.0)],
    [(2, 3, 3, 10.0, 0.0), (4, 5, 2, -1.0, 0.0), (0, 0, 0, 0.0, 11.0), (0, 0, 0, 0.0, 5.0),
     (0, 0, 0, 0.0, 7.0)],
]


def save_model(path: Path, forests: list[dict], linear: list[float]) -> Path:
    cells = np.empty((3, 1), dtype=object)  # rf = cell(3, 1), as train_RF_regression.m builds it
    for i, forest in enumerate(forests):
        cells[i, 0] = forest
    scipy.io.savemat(path, {"model": {"rf": cells, "linear": np.array(linear, float).reshape(4, 1)}})
    return path
