"""Real learning checks: a few hundred steps of each pretext task on skimage photographs reach an
accuracy far above chance on a photograph never seen in training (TPAMI 2021 §4.2).

The networks are narrowed (the NSE's first stage to 8 channels, the jigsaw features to 16) so
that each check takes well under a minute on two busy CPU cores; the geometry (receptive field
31, stride 4, τ = 64, non-overlapping sampling) is the paper's.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from spsr.nse.accuracy import evaluate_task
from spsr.nse.contrastive import ContrastiveTask
from spsr.nse.extractor import ContrastivePredictor, JigsawHead, NeuralStructureExtractor
from spsr.nse.fit import fit_task
from spsr.nse.jigsaw import JigsawTask

data = pytest.importorskip("skimage.data")

Photos = tuple[list[torch.Tensor], list[torch.Tensor]]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255


@pytest.fixture(scope="module")
def photos() -> Photos:
    train = [_tensor(data.astronaut()), _tensor(data.coffee()), _tensor(data.rocket()),
             _tensor(data.chelsea())]
    held_out = [_tensor(data.immunohistochemistry())]
    return train, held_out


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small convolutions gain nothing from a second thread, and lose a lot on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_contrastive_prediction_learns_far_above_chance(photos: Photos) -> None:
    train, held_out = photos
    torch.manual_seed(0)
    task = ContrastiveTask(
        NeuralStructureExtractor(mid_channels=8), ContrastivePredictor(hidden=128),
        "horizontal", tau=64.0, anchors_per_image=64,
    )
    before = evaluate_task(task, held_out, crop_size=128, repeats=2)
    losses = fit_task(task, train, crop_size=128, steps=350, batch_size=8, lr=2e-3)
    after = evaluate_task(task, held_out, crop_size=128, repeats=2)
    chance = 1 / (after.mean_negatives + 1)
    assert 550 < after.mean_negatives < 650  # 128×128 crops: a 32×32 map less the excluded
    assert np.mean(losses[-25:]) < np.mean(losses[:25]) - 1.0
    assert after.accuracy > 20 * chance, (before, after)  # measured: ~47× chance
    assert after.accuracy > 3 * before.accuracy


def test_jigsaw_learns_far_above_chance(photos: Photos) -> None:
    train, held_out = photos
    torch.manual_seed(0)
    task = JigsawTask(
        NeuralStructureExtractor(mid_channels=8, out_channels=16),
        JigsawHead(channels=16, hidden=128),
        puzzles_per_image=36,
    )
    before = evaluate_task(task, held_out, crop_size=84, repeats=2)
    fit_task(task, train, crop_size=84, steps=500, batch_size=16, lr=2e-3)
    after = evaluate_task(task, held_out, crop_size=84, repeats=2)
    assert before.accuracy < 2 / 24  # untrained: chance
    assert after.accuracy > 3 / 24, (before, after)  # measured: ~22 %


def test_evaluation_keeps_each_repeat_so_the_spread_can_be_reported(photos: Photos) -> None:
    # The papers' Fig. 6 gives mean ± std over 10 repeats: each repeat's accuracy is kept, the
    # pooled accuracy is their mean (every repeat scores the same number of samples), and std is
    # their sample standard deviation. Untrained heads, so nothing here depends on learning.
    import statistics

    _, held_out = photos
    torch.manual_seed(0)
    task = JigsawTask(NeuralStructureExtractor(mid_channels=8, out_channels=16),
                      JigsawHead(channels=16, hidden=32), puzzles_per_image=8)
    result = evaluate_task(task, held_out, crop_size=84, repeats=4, seed=3)
    assert len(result.repeat_accuracies) == 4
    assert result.accuracy == pytest.approx(statistics.fmean(result.repeat_accuracies), abs=1e-12)
    assert result.std == pytest.approx(statistics.stdev(result.repeat_accuracies), abs=1e-12)
    assert len(set(result.repeat_accuracies)) > 1  # new puzzles each repeat
    assert evaluate_task(task, held_out, crop_size=84, repeats=1).std == 0.0


def test_paper_protocol_draws_one_sample_per_test_crop_and_many_anchors_sixteen(
    photos: Photos,
) -> None:
    # TPAMI 2021 §5.2 / App. B.2: one target per 200×200 feature map, one 2×2 grid per 84×84
    # patch, 10 repeats; "many-anchors" is the named variant with 16 per crop. No re-fit
    # (fit_steps=0), so only the sampling is checked.
    from spsr.nse.accuracy import dense_crops, validate_nse

    train, held_out = photos
    torch.manual_seed(0)
    extractor = NeuralStructureExtractor(mid_channels=8)
    crops = {"contrastive": len(dense_crops(held_out, 200)), "jigsaw": len(dense_crops(held_out, 84))}
    for protocol, per_crop in (("paper", 1), ("many-anchors", 16)):
        scores = validate_nse(extractor, train, {"held": held_out}, fit_steps=0, repeats=3,
                              protocol=protocol)
        assert {s.task: s.samples for s in scores} == {
            t: 3 * per_crop * n for t, n in crops.items()}
        assert all(len(s.repeat_accuracies) == 3 for s in scores)
    with pytest.raises(Exception, match="unknown NSE evaluation protocol"):
        validate_nse(extractor, train, {"held": held_out}, fit_steps=0, protocol="one")


def test_one_fit_step_default_for_both_evaluation_entry_points() -> None:
    import inspect

    from spsr.nse import DEFAULT_FIT_STEPS
    from spsr.nse.accuracy import evaluate_run, validate_nse

    for entry in (validate_nse, evaluate_run):
        assert inspect.signature(entry).parameters["fit_steps"].default == DEFAULT_FIT_STEPS
