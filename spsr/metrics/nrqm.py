"""Ma et al.'s no-reference SR quality metric ("Ma", NRQM; CVIU 2017), higher is better (0..10).

``score = [1, s1, s2, s3] @ linear`` where ``s_i`` is regression forest ``i`` applied to feature
group ``i`` (:mod:`spsr.metrics.nrqm_features`), exactly as the MATLAB ``quality_predict.m``.

The forests are the authors' ``model.mat`` (github chaoma99/sr-metric, MIT), which is not
redistributed here. It is looked up, in order, at:

1. an explicit path (``spsr eval --ma-model PATH``), used as given;
2. ``$SPSR_CACHE/nrqm/model.mat``;
3. ``$XDG_CACHE_HOME/spsr/nrqm/model.mat``, i.e. ``~/.cache/spsr/nrqm/model.mat`` by default.

A cached file must match the git blob id of the authors' file; when it is missing or corrupt it is
fetched from the repository by :mod:`spsr.weights` (unless network access is off).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from spsr.errors import CheckpointError
from spsr.metrics.conventions import luminance, shave
from spsr.metrics.forest import RegressionForest
from spsr.metrics.nrqm_features import nrqm_features
from spsr.weights.catalog import spec, spsr_cache_dir  # noqa: F401 - re-exported
from spsr.weights.fetch import Need, ensure_file
from spsr.weights.kinds import expect_kind

MODEL_FILENAME = "model.mat"
FEATURE_SIZES = (18, 45, 75)


def default_ma_model_path() -> Path:
    """Where the Ma model is looked for when no path is given."""
    return spec("ma-model").cache_path


def find_ma_model(path: str | os.PathLike[str] | None = None, option: str = "--ma-model PATH") -> Path:
    """The Ma ``model.mat`` to use.

    Args:
        path: explicit file; None uses the cache folder (fetching the file when it is missing or
            corrupt, unless network access is off).
        option: the option that supplies the file, for messages.

    Raises:
        MissingWeightsError: the file does not exist and cannot be fetched.
    """
    return ensure_file(Need(spec("ma-model"), None if path is None else str(path), option, "Ma / PI"))


@dataclass(frozen=True)
class MaModel:
    """Three regression forests and the linear stage of Ma et al.'s metric."""

    forests: tuple[RegressionForest, RegressionForest, RegressionForest]
    linear: np.ndarray  # (4,): intercept, then one weight per forest

    def forest_scores(
        self, f1: np.ndarray, f2: np.ndarray, f3: np.ndarray
    ) -> tuple[float, float, float]:
        """The three forest predictions ``(s1, s2, s3)``."""
        s1, s2, s3 = (float(f.predict(x)) for f, x in zip(self.forests, (f1, f2, f3), strict=True))
        return s1, s2, s3

    def predict(self, f1: np.ndarray, f2: np.ndarray, f3: np.ndarray) -> float:
        """The Ma score of one image's features."""
        s = self.forest_scores(f1, f2, f3)
        return float(np.array([1.0, *s]) @ self.linear)

    @classmethod
    def from_matlab(cls, model: Any, name: str = "model") -> MaModel:
        """Build from the ``model`` struct of ``model.mat`` (loaded with ``struct_as_record=False,
        squeeze_me=True``): fields ``rf`` (3 forests) and ``linear`` (4 weights)."""
        for key in ("rf", "linear"):
            if not hasattr(model, key):
                raise CheckpointError(f"{name} has no field '{key}': not Ma et al.'s model.mat")
        rfs = np.asarray(model.rf, dtype=object).reshape(-1)
        linear = np.asarray(model.linear, dtype=np.float64).reshape(-1)
        if len(rfs) != 3 or linear.size != 4:
            raise CheckpointError(
                f"{name} holds {len(rfs)} forests and {linear.size} linear weights, expected 3 and 4"
            )
        forests = tuple(
            RegressionForest.from_matlab(rf, f"{name}.rf{{{i + 1}}}") for i, rf in enumerate(rfs)
        )
        for forest, size, i in zip(forests, FEATURE_SIZES, range(3), strict=True):
            if forest.n_features_used > size:
                raise CheckpointError(f"{name}.rf{{{i + 1}}} uses more than {size} features")
        return cls(forests=forests, linear=linear)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> MaModel:
    kind = expect_kind(
        Path(path), ("mat", "hdf5"), "Ma et al.'s model.mat",
        "--ma-model takes model.mat of github.com/chaoma99/sr-metric",
    )
    if kind == "hdf5":
        raise CheckpointError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which cannot be read here; the authors' model.mat "
            "is a v5 MAT file: use it unchanged, or re-save it with save(..., '-v7')"
        )
    try:
        data = scipy.io.loadmat(
            path, squeeze_me=True, struct_as_record=False, chars_as_strings=False
        )
    except Exception as exc:  # noqa: BLE001 - not a MAT file, truncated, v7.3/HDF5 ...
        raise CheckpointError(f"cannot read Ma model {path}: {exc}") from None
    if "model" not in data:
        raise CheckpointError(f"{path} has no 'model' variable: not Ma et al.'s model.mat")
    return MaModel.from_matlab(data["model"], name=Path(path).name)


def load_ma_model(path: str | os.PathLike[str] | None = None) -> MaModel:
    """Load (once per file) the authors' ``model.mat``.

    Args:
        path: explicit file; None looks in the cache folder (:func:`default_ma_model_path`).

    Raises:
        MissingWeightsError: no model file.
        CheckpointError: the file is not a usable model.
    """
    found = find_ma_model(path).resolve()
    return _load_cached(str(found), found.stat().st_mtime_ns)


def ma_of_y(y: np.ndarray, model: MaModel) -> float:
    """Ma score of a Y image (float 0..255, border already shaved)."""
    return model.predict(*nrqm_features(y))


def calculate_ma(
    img: np.ndarray,
    crop_border: int = 0,
    model: MaModel | str | os.PathLike[str] | None = None,
    y_channel: bool = True,
) -> float:
    """Ma et al.'s score of an 8-bit image in the papers' convention (higher is better).

    Args:
        img: ``(H, W[, 3])`` ``uint8`` (or float in [0, 1]).
        crop_border: pixels shaved from every side first (PI protocol: 4).
        model: a loaded :class:`MaModel`, a path to ``model.mat``, or None for the cache folder.
        y_channel: score the evaluation Y (the PIRM protocol); False: MATLAB ``rgb2gray``.

    Returns:
        The score, nominally in 0..10.
    """
    loaded = model if isinstance(model, MaModel) else load_ma_model(model)
    return ma_of_y(shave(luminance(img, y_channel), crop_border), loaded)
