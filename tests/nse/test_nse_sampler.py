"""Sampling geometry of the NSE pretext tasks: negatives, neighbours, jigsaw grids."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from torch import nn

from spsr.errors import ConfigError
from spsr.nse.contrastive import ContrastiveTask
from spsr.nse.extractor import JIGSAW_PERMUTATIONS, ContrastivePredictor, JigsawHead
from spsr.nse.geometry import (
    inside_range,
    negative_mask,
    negative_positions,
    receptive_field_box,
    receptive_fields_overlap,
    sampling_offsets,
    separation,
)
from spsr.nse.jigsaw import JigsawTask
from spsr.nse.sampling import dense_crops, random_crops


def _pixel_windows_intersect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Independent check in pixels: do the 31×31 windows centred on 4a and 4b share a pixel?"""
    rows_a, cols_a = range(4 * a[0] - 15, 4 * a[0] + 16), range(4 * a[1] - 15, 4 * a[1] + 16)
    rows_b, cols_b = range(4 * b[0] - 15, 4 * b[0] + 16), range(4 * b[1] - 15, 4 * b[1] + 16)
    return bool(set(rows_a) & set(rows_b)) and bool(set(cols_a) & set(cols_b))


def test_separation_is_the_smallest_non_overlapping_distance() -> None:
    assert separation() == 8
    assert receptive_fields_overlap((0, 0), (0, 7))
    assert receptive_fields_overlap((0, 0), (7, 7))
    assert not receptive_fields_overlap((0, 0), (0, 8))
    assert not receptive_fields_overlap((0, 0), (8, -3))
    assert receptive_field_box((5, 6)) == (5, 9, 35, 39)
    for a, b in [((3, 3), (3, 10)), ((3, 3), (3, 11)), ((3, 3), (10, 10)), ((3, 3), (11, 2))]:
        assert receptive_fields_overlap(a, b) == _pixel_windows_intersect(a, b)


@pytest.mark.parametrize("sampling", ["horizontal", "vertical", "cross"])
def test_sampling_inputs_overlap_neither_target_nor_each_other(sampling: str) -> None:
    offsets = sampling_offsets(sampling, separation())
    assert len(offsets) == (4 if sampling == "cross" else 2)
    points = [(20, 20)] + [(20 + di, 20 + dj) for di, dj in offsets]
    for a, b in itertools.combinations(points, 2):
        assert not _pixel_windows_intersect(a, b)
    if sampling == "horizontal":
        assert all(di == 0 for di, _ in offsets)
    if sampling == "vertical":
        assert all(dj == 0 for _, dj in offsets)


def test_unknown_sampling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown sampling"):
        sampling_offsets("diagonal", 8)


def test_negative_sampler_never_returns_an_overlapping_position_property() -> None:
    rng = random.Random(1234)
    for _ in range(60):
        height, width = rng.randint(20, 40), rng.randint(20, 40)
        sampling = rng.choice(["horizontal", "vertical", "cross"])
        offsets = sampling_offsets(sampling, separation())
        target = (rng.randint(8, height - 9), rng.randint(8, width - 9))
        inputs = [(target[0] + di, target[1] + dj) for di, dj in offsets]
        negatives = negative_positions(height, width, target, inputs)
        returned = set(negatives)
        assert len(returned) == len(negatives)
        for pos in itertools.product(range(height), range(width)):
            overlaps = any(_pixel_windows_intersect(pos, q) for q in [target, *inputs])
            # Sound (never an overlapping position) and complete (every other position).
            assert (pos in returned) == (not overlaps), (pos, target, inputs)


def test_negative_positions_reject_overlapping_inputs() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        negative_positions(30, 30, (15, 15), [(15, 10), (15, 23)])


def test_negative_counts_match_the_papers_crop_sizes() -> None:
    # 420×420 crops: "about 10000 negatives"; 200×200 crops: "around 2000".
    for crop, expected in [(420, 10000), (200, 2000)]:
        side = crop // 4
        target = (side // 2, side // 2)
        occupied = torch.tensor([[target, (target[0], target[1] - 8), (target[0], target[1] + 8)]])
        count = int(negative_mask(side, side, occupied, separation()).sum())
        assert abs(count - expected) / expected < 0.1, (crop, count)


def test_inside_range_keeps_windows_in_the_image() -> None:
    low, high = inside_range(128)
    assert receptive_field_box((low, low))[0] >= 0 and receptive_field_box((low - 1, 0))[0] < 0
    assert receptive_field_box((high, high))[2] <= 127
    assert receptive_field_box((high + 1, 0))[2] > 127


class _OneHotPositions(nn.Module):
    """Stub extractor: feature (i, j) is the one-hot vector of its own position."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        eye = torch.eye((h // 4) * (w // 4))
        return eye.reshape(-1, h // 4, w // 4).unsqueeze(0).expand(n, -1, -1, -1)


def test_contrastive_task_labels_the_target_among_its_negatives() -> None:
    """An oracle predictor (left neighbour's one-hot shifted 8 columns right) must score 100 %."""
    size, side = 128, 32
    predictor = ContrastivePredictor(channels=side * side, num_inputs=2, hidden=4)
    shift = torch.zeros(side * side, side * side)
    for i, j in itertools.product(range(side), range(side - 8)):
        shift[i * side + j + 8, i * side + j] = 1.0
    oracle = nn.Linear(2 * side * side, side * side, bias=False)
    with torch.no_grad():
        oracle.weight.copy_(torch.cat([shift, torch.zeros_like(shift)], dim=1))
    predictor.net = oracle
    task = ContrastiveTask(_OneHotPositions(), predictor, "horizontal", anchors_per_image=16)
    result = task(torch.rand(3, 3, size, size), torch.Generator().manual_seed(0))
    assert result.correct == result.total == 48
    assert float(result.loss.detach()) < 1e-6
    assert 500 < result.mean_negatives < 1024 - 3 * 15 * 15 + 300


class _Coordinates(nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        rows = torch.arange(h // 4).float().view(-1, 1).expand(h // 4, w // 4)
        cols = torch.arange(w // 4).float().view(1, -1).expand(h // 4, w // 4)
        return torch.stack([rows, cols]).unsqueeze(0).expand(n, -1, -1, -1)


class _OracleJigsawHead(JigsawHead):
    """Scores each permutation by how well the tiles' coordinates fit the grid it implies."""

    def __init__(self) -> None:
        super().__init__(channels=2, hidden=2)
        self.grid = torch.tensor([(0, 0), (0, 8), (8, 0), (8, 8)]).float()

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        corner = tiles.min(dim=-2, keepdim=True).values
        relative = tiles - corner  # ... × 4 × 2
        scores = []
        for perm in JIGSAW_PERMUTATIONS:
            expected = self.grid[list(perm)]  # shuffled[t] = tiles[perm[t]]
            scores.append(-(relative - expected).abs().sum((-1, -2)))
        return torch.stack(scores, dim=-1)


def test_jigsaw_task_label_names_the_permutation_applied() -> None:
    task = JigsawTask(_Coordinates(), _OracleJigsawHead(), puzzles_per_image=32)
    result = task(torch.rand(4, 3, 84, 84), torch.Generator().manual_seed(3))
    assert result.correct == result.total == 128


def test_jigsaw_tiles_do_not_overlap_and_fit_84_crops() -> None:
    task = JigsawTask(_Coordinates(), _OracleJigsawHead())
    for a, b in itertools.combinations(task.grid, 2):
        assert not _pixel_windows_intersect(a, b)
    with pytest.raises(ConfigError, match="too small"):
        task(torch.rand(1, 3, 60, 60))


def test_predictor_size_must_match_the_sampling() -> None:
    with pytest.raises(ConfigError, match="inputs"):
        ContrastiveTask(_Coordinates(), ContrastivePredictor(num_inputs=2), "cross")


def test_crops() -> None:
    images = [torch.rand(3, 50, 70), torch.rand(3, 20, 20)]
    crops = random_crops(images, 32, 5, torch.Generator().manual_seed(0))
    assert crops.shape == (5, 3, 32, 32)
    assert dense_crops(images, 25).shape == (4, 3, 25, 25)
    assert torch.equal(dense_crops(images, 25)[1], images[0][:, :25, 25:50])
    with pytest.raises(ConfigError, match="at least"):
        random_crops(images, 80, 1)


def test_refitting_a_head_leaves_the_frozen_extractor_untouched() -> None:
    from spsr.nse.extractor import NeuralStructureExtractor
    from spsr.nse.fit import fit_task

    torch.manual_seed(0)
    extractor = NeuralStructureExtractor(mid_channels=8)
    before = {k: v.clone() for k, v in extractor.state_dict().items()}
    predictor = ContrastivePredictor(hidden=16)
    head_before = [p.clone() for p in predictor.parameters()]
    task = ContrastiveTask(extractor, predictor, anchors_per_image=4)
    images = [(torch.rand(3, 140, 150) * 255).to(torch.uint8)]  # uint8 images are accepted
    losses = fit_task(task, images, crop_size=128, steps=2, batch_size=2, train_extractor=False)
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert all(torch.equal(before[k], v) for k, v in extractor.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(head_before, predictor.parameters(), strict=True))
    assert all(p.requires_grad for p in extractor.parameters())  # flags restored
