"""Regression forests in the layout of randomforest-matlab (``regRF_train``), evaluated vectorised.

Ma et al.'s ``model.mat`` holds three such forests. Each is a struct whose fields are
``(nrnodes, ntree)`` matrices, one column per tree, 1-based:

* ``lDau`` / ``rDau``: left / right daughter node (0 for a terminal node),
* ``mbest``: the feature a node splits on, ``upper``: its threshold (``x <= upper`` goes left),
* ``avnode``: the prediction of a terminal node,
* ``ndtree``: nodes used per tree, ``ntree``, ``nrnodes``, ``coef`` (bias correction, usually 0).

``nodestatus`` is not read: the official MEX stores it as bytes inside a MATLAB char array, and a node
is terminal exactly when its left daughter is 0. All trees advance one level per step for all
samples at once, so a 2000-tree forest costs a few dozen numpy operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spsr.errors import CheckpointError


@dataclass(frozen=True)
class RegressionForest:
    """One regression forest; arrays are ``(ntree, nrnodes)``, node and feature indices 0-based.

    Attributes:
        left: left daughter of each node, -1 for a terminal node.
        right: right daughter of each node, -1 for a terminal node.
        feature: feature each node splits on (0 for terminal nodes).
        threshold: split value; ``x[feature] <= threshold`` goes left.
        value: prediction of each terminal node.
        bias_coef: ``(a, b)`` bias correction ``a + b * y`` or None.
    """

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray
    bias_coef: tuple[float, float] | None = None

    @property
    def n_trees(self) -> int:
        return self.left.shape[0]

    @property
    def n_features_used(self) -> int:
        """One more than the largest feature index any split uses."""
        internal = self.left >= 0
        return int(self.feature[internal].max()) + 1 if internal.any() else 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Mean prediction of all trees.

        Args:
            x: ``(n_features,)`` or ``(n_samples, n_features)``.

        Returns:
            ``()`` or ``(n_samples,)`` float64.
        """
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] < self.n_features_used:
            raise CheckpointError(
                f"forest splits on feature {self.n_features_used} but only {x.shape[1]} given"
            )
        trees = np.arange(self.n_trees)[None, :]
        samples = np.arange(x.shape[0])[:, None]
        node = np.zeros((x.shape[0], self.n_trees), dtype=np.int64)
        for _ in range(self.left.shape[1]):  # depth can never exceed the node count
            left = self.left[trees, node]
            internal = left >= 0
            if not internal.any():
                break
            go_left = x[samples, self.feature[trees, node]] <= self.threshold[trees, node]
            node = np.where(internal, np.where(go_left, left, self.right[trees, node]), node)
        pred = self.value[trees, node].mean(axis=1)
        if self.bias_coef is not None:
            pred = self.bias_coef[0] + self.bias_coef[1] * pred
        return pred[0] if single else pred

    @classmethod
    def from_matlab(cls, rf: object, name: str = "forest") -> RegressionForest:
        """Build from a struct loaded by ``scipy.io.loadmat(..., struct_as_record=False,
        squeeze_me=True)`` (attributes ``lDau``, ``rDau``, ``mbest``, ``upper``, ``avnode``)."""

        def field(key: str) -> np.ndarray:
            if not hasattr(rf, key):
                raise CheckpointError(f"{name} has no field '{key}': not a regRF_train forest")
            arr = np.asarray(getattr(rf, key))
            return arr.reshape(-1, 1) if arr.ndim < 2 else arr  # squeeze_me drops 1-sized axes

        l_dau, r_dau = field("lDau"), field("rDau")
        shape = l_dau.shape
        arrays = {k: field(k) for k in ("mbest", "upper", "avnode")}
        for key, arr in {"rDau": r_dau, **arrays}.items():
            if arr.shape != shape:
                raise CheckpointError(f"{name}.{key} is {arr.shape}, lDau is {shape}")
        terminal = l_dau.T.astype(np.int64) == 0
        left = np.where(terminal, -1, l_dau.T.astype(np.int64) - 1)
        right = np.where(terminal, -1, r_dau.T.astype(np.int64) - 1)
        feature = np.where(terminal, 0, arrays["mbest"].T.astype(np.int64) - 1)
        n_nodes = shape[0]
        bad = (~terminal) & ((left >= n_nodes) | (right >= n_nodes) | (right < 0) | (feature < 0))
        if bad.any():
            raise CheckpointError(f"{name} has daughter or feature indices out of range")
        coef = np.asarray(getattr(rf, "coef", [0.0, 0.0]), dtype=np.float64).reshape(-1)
        bias = (float(coef[0]), float(coef[1])) if coef.size >= 2 and np.any(coef != 0) else None
        return cls(
            left=left,
            right=right,
            feature=feature,
            threshold=arrays["upper"].T.astype(np.float64),
            value=arrays["avnode"].T.astype(np.float64),
            bias_coef=bias,
        )
