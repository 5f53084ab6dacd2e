"""Ma et al.'s metric: features against the official code, forests checked by hand on a synthetic
``model.mat`` of the authors' layout, model lookup and errors, PI."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from _ma_model import HAND_TREES, make_forest, save_model
from conftest import trust_cached_file
from skimage import data as skdata

from spsr.errors import CheckpointError, MissingWeightsError
from spsr.metrics import (
    calculate_ma,
    calculate_pi,
    default_ma_model_path,
    load_ma_model,
    niqe_of_y,
    perceptual_scores,
)
from spsr.metrics.conventions import y_levels
from spsr.metrics.forest import RegressionForest
from spsr.metrics.nrqm_features import nrqm_features

# Features of the official feature_all.m for skimage's coffee (Y of rgb2ycbcr, 4-pixel shave), as
# published with the reference data of github.com/mxzhuang/parallel-perceptual-index.
F1 = [
    0.29994564379336902, 0.88929535816177463, 2.8211920650625131, 1.4187220214895389,
    0.61005066567097321, 0.14148095691615684, 0.28529663608562777, 0.82540557086011723,
    3.0518460706229322, 1.5082400158199012, 0.69678881469523923, 0.16537087705538997,
    0.2739151515151515, 0.76809575757575776, 3.1455671989660297, 1.5885271083491848,
    0.60662087088115313, 0.16316208748708622,
]
F2 = [
    1.708, 1.597, 1.357, 1.816, 1.834, 1.685, 1.487, 1.580, 1.557, 1.492, 1.682, 1.553,
    0.577, 0.663, 0.665, 0.603, 0.565, 0.562,
    0.80773043467178052, 0.78972669789799121, 0.77776366000620845, 0.79824167210331431,
    0.80315917060201425, 0.8056633622598498, 0.67705605309798733, 0.62804095404403149,
    0.59727583373365523, 0.63289769798192386, 0.65240623403139641, 0.67247489550077255,
    0.9424499355870678, 0.87771336271106615, 0.89508711521922191, 0.88801300842659703,
    0.851901868802734, 0.9614674643609572, 0.90454087479764822, 0.86853812664247465,
    0.85258577011472636, 0.94143229659714789, 0.86586155002968035, 0.84573352211258002,
    0.95724809139175371, 0.91012963486705645, 0.96910496410005142,
]
F3_HEADS = [  # the five largest singular values of each of the three pyramid levels
    217.58559272416701, 16.51853461806888, 15.966828709783631, 8.5022935197113227, 7.2943271972776529,
    108.17875560548387, 9.5099643008918751, 8.6207142721457046, 4.7390435903589001, 4.3459393506302479,
    53.227745584397745, 7.0528292699059278, 7.0028592674265964, 2.6837520068237013, 2.4580649552119285,
]


def pirm_y(rgb: np.ndarray, shave: int = 4) -> np.ndarray:
    """Y as MATLAB rgb2ycbcr evaluates it for uint8 (imlincomb order, round half up), shaved."""
    x = rgb.astype(np.float64)
    y = 65.481 / 255 * x[..., 0] + 128.553 / 255 * x[..., 1] + 24.966 / 255 * x[..., 2] + 16
    return np.clip(np.floor(y + 0.5), 0, 255)[shave:-shave, shave:-shave]


@pytest.fixture(scope="module")
def coffee_features() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return nrqm_features(pirm_y(skdata.coffee()))


def test_features_equal_the_official_feature_all(coffee_features):
    f1, f2, f3 = coffee_features
    assert f1.shape == (18,) and f2.shape == (45,) and f3.shape == (75,)
    np.testing.assert_allclose(f1, F1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f2, F2, rtol=0, atol=1e-9)
    heads = np.concatenate([f3[0:5], f3[25:30], f3[50:55]])
    np.testing.assert_allclose(heads, F3_HEADS, rtol=1e-10)
    for level in range(3):  # singular values come sorted, largest first
        assert np.all(np.diff(f3[25 * level : 25 * (level + 1)]) <= 0)


# ----------------------------------------------------------------------------- synthetic model.mat

def test_forest_evaluation_by_hand(tmp_path):
    path = save_model(tmp_path / "model.mat", [make_forest(HAND_TREES, 5)] * 3, [0, 1, 0, 0])
    forest = load_ma_model(path).forests[0]
    assert forest.n_trees == 2
    x = np.zeros((4, 18))
    x[0, [0, 1, 2]] = [0.2, 0.0, 4.0]  # tree 1 → 1; tree 2 → x3 <= 10, x2 > -1 → 7
    x[1, [0, 1, 2]] = [0.5, -1.0, 10.0]  # ties go left: 1 and 5
    x[2, [0, 1, 2]] = [0.9, 0.0, 12.0]  # 3 and 11
    x[3, [0, 1, 2]] = [0.6, -5.0, 3.0]  # 3 and 5
    np.testing.assert_array_equal(forest.predict(x), [4.0, 3.0, 7.0, 4.0])
    assert forest.predict(x[2]) == 7.0


def test_bias_correction_is_applied_like_regRF_predict(tmp_path):
    forest = make_forest(HAND_TREES, 5)
    forest["coef"] = np.array([0.5, 2.0])  # Y_hat = coef(1) + coef(2) * Y_hat
    path = save_model(tmp_path / "model.mat", [forest] * 3, [0, 1, 0, 0])
    assert load_ma_model(path).forests[0].predict(np.full(18, 100.0)) == 0.5 + 2.0 * 7.0


def test_ma_is_the_linear_stage_over_the_three_forests(tmp_path):
    img = np.ascontiguousarray(skdata.chelsea()[:120, :140])
    f1, f2, f3 = nrqm_features(y_levels(img)[4:-4, 4:-4])

    def stump(feature: int, threshold: float, low: float, high: float) -> dict:
        return make_forest([[(2, 3, feature + 1, threshold, 0), (0, 0, 0, 0, low), (0, 0, 0, 0, high)]], 3)

    forests = [
        stump(3, f1[3] + 1e-6, 2.0, 9.0),  # f1[3] <= threshold → 2
        stump(20, f2[20] - 1e-6, 4.0, 6.0),  # f2[20] > threshold → 6
        stump(74, f3[74], 1.0, 8.0),  # tie → left → 1
    ]
    path = save_model(tmp_path / "model.mat", forests, [0.25, 1.0, 0.5, -2.0])
    expected = 0.25 + 1.0 * 2.0 + 0.5 * 6.0 - 2.0 * 1.0
    assert calculate_ma(img, crop_border=4, model=path) == pytest.approx(expected, abs=1e-12)
    scores = perceptual_scores(img, crop_border=4, ma_model=path)
    niqe = niqe_of_y(y_levels(img)[4:-4, 4:-4])
    assert scores["ma"] == pytest.approx(expected)
    assert scores["niqe"] == pytest.approx(niqe)
    assert scores["pi"] == pytest.approx(((10 - expected) + niqe) / 2)
    assert calculate_pi(img, 4, path) == pytest.approx(scores["pi"])


def test_model_is_found_in_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))
    assert default_ma_model_path() == tmp_path / "cache" / "nrqm" / "model.mat"
    with pytest.raises(MissingWeightsError, match="chaoma99/sr-metric") as info:
        load_ma_model()
    assert "SPSR_CACHE" in str(info.value)
    (tmp_path / "cache" / "nrqm").mkdir(parents=True)
    save_model(default_ma_model_path(), [make_forest(HAND_TREES, 5)] * 3, [0, 1, 1, 1])
    with pytest.raises(MissingWeightsError, match="cached copy is corrupt"):
        load_ma_model()  # not the authors' file: its git blob id does not match
    trust_cached_file(monkeypatch, "ma-model", default_ma_model_path())
    assert load_ma_model().linear.tolist() == [0, 1, 1, 1]
    monkeypatch.delenv("SPSR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_ma_model_path() == tmp_path / "xdg" / "spsr" / "nrqm" / "model.mat"


def test_unusable_model_files_raise_checkpoint_errors(tmp_path):
    with pytest.raises(MissingWeightsError, match="not found"):
        load_ma_model(tmp_path / "absent.mat")
    junk = tmp_path / "junk.mat"
    junk.write_bytes(b"not a mat file at all")
    with pytest.raises(CheckpointError, match="is a text file"):
        load_ma_model(junk)
    junk.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(CheckpointError, match="cannot read Ma model"):
        load_ma_model(junk)
    scipy.io.savemat(tmp_path / "other.mat", {"weights": np.zeros(3)})
    with pytest.raises(CheckpointError, match="no 'model' variable"):
        load_ma_model(tmp_path / "other.mat")
    two = save_model(tmp_path / "two.mat", [make_forest(HAND_TREES, 5)] * 3, [0, 1, 1, 1])
    data = scipy.io.loadmat(two)
    data["model"][0, 0]["linear"] = np.zeros((3, 1))
    scipy.io.savemat(tmp_path / "bad_linear.mat", {"model": data["model"]})
    with pytest.raises(CheckpointError, match="3 linear weights"):
        load_ma_model(tmp_path / "bad_linear.mat")


def test_a_forest_with_out_of_range_daughters_is_rejected():
    class Struct:
        lDau = np.array([[5], [0]])
        rDau = np.array([[2], [0]])
        mbest = np.array([[1], [0]])
        upper = np.zeros((2, 1))
        avnode = np.zeros((2, 1))

    with pytest.raises(CheckpointError, match="out of range"):
        RegressionForest.from_matlab(Struct())
