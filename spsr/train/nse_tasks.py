"""Self-supervised pretext tasks that train the neural structure extractor (TPAMI 2021 §4.2, App. B).

Contrastive prediction: a predictor P maps the structure features of M neighbour positions
(horizontal: left and right, vertical: above and below, cross: all four) to a prediction p_t of
the target's feature f_t; InfoNCE (eq. 11) picks f_t among the negatives of the same feature map,
with the similarity h(f, p) = exp(τ·cos(f, p)), τ = 64 (eq. 12). Receptive fields of the inputs
and the target do not overlap each other, and a negative's overlaps none of them.

Jigsaw: four features on a 2×2 grid with non-overlapping receptive fields, shuffled by one of the
24 permutations; a 3-layer classifier names the permutation (cross-entropy, eq. 13).

Geometry: feature (i, j) of the NSE sees pixels [4i-15, 4i+15] × [4j-15, 4j+15]. Two such windows
are disjoint exactly when the positions are at least ``separation = ceil(31/4) = 8`` apart along
one axis (Chebyshev distance ≥ 8), which is the neighbour offset used by every sampling strategy.
Targets, inputs and jigsaw tiles are taken where the window lies wholly inside the image (so no
position can be recognised by the zero padding); negatives come from the whole map (a 420×420
crop gives ≈ 10 500 negatives, a 200×200 crop ≈ 2 000, the paper's counts).

The task modules own the extractor and the head, so one ``DistributedDataParallel`` wraps both.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from spsr.archs.nse import (
    JIGSAW_PERMUTATIONS,
    NSE_RECEPTIVE_FIELD,
    NSE_STRIDE,
    ContrastivePredictor,
    JigsawHead,
    NeuralStructureExtractor,
)
from spsr.errors import ConfigError

Sampling = Literal["horizontal", "vertical", "cross"]
SAMPLINGS: tuple[str, ...] = ("horizontal", "vertical", "cross")
#: τ of eq. 12 ("set to 64 for stable convergence").
DEFAULT_TAU = 64.0


# ----------------------------------------------------------------------------------- geometry


def separation(receptive_field: int = NSE_RECEPTIVE_FIELD, stride: int = NSE_STRIDE) -> int:
    """Smallest distance, in feature positions, at which two receptive fields do not overlap."""
    return math.ceil(receptive_field / stride)


def receptive_field_box(
    position: tuple[int, int], receptive_field: int = NSE_RECEPTIVE_FIELD, stride: int = NSE_STRIDE
) -> tuple[int, int, int, int]:
    """Pixel window (top, left, bottom, right), inclusive, that feature ``position`` sees."""
    half = receptive_field // 2
    i, j = position
    return (stride * i - half, stride * j - half, stride * i + half, stride * j + half)


def receptive_fields_overlap(
    a: tuple[int, int],
    b: tuple[int, int],
    receptive_field: int = NSE_RECEPTIVE_FIELD,
    stride: int = NSE_STRIDE,
) -> bool:
    """Whether the pixel windows of feature positions ``a`` and ``b`` share a pixel."""
    at, al, ab, ar = receptive_field_box(a, receptive_field, stride)
    bt, bl, bb, br = receptive_field_box(b, receptive_field, stride)
    return at <= bb and bt <= ab and al <= br and bl <= ar


def sampling_offsets(sampling: str, distance: int) -> tuple[tuple[int, int], ...]:
    """Offsets (di, dj) of the input positions from the target for a sampling strategy.

    Args:
        sampling: 'horizontal', 'vertical' or 'cross' (TPAMI 2021 Fig. 13).
        distance: offset in feature positions, normally :func:`separation`.

    Returns:
        M offsets: 2 for horizontal / vertical, 4 for cross.
    """
    if sampling == "horizontal":
        return ((0, -distance), (0, distance))
    if sampling == "vertical":
        return ((-distance, 0), (distance, 0))
    if sampling == "cross":
        return ((-distance, 0), (0, -distance), (0, distance), (distance, 0))
    raise ConfigError(f"unknown sampling {sampling!r}: choose one of {', '.join(SAMPLINGS)}")


def inside_range(
    image_size: int, receptive_field: int = NSE_RECEPTIVE_FIELD, stride: int = NSE_STRIDE
) -> tuple[int, int]:
    """First and last feature index whose window lies wholly inside an image side of this size."""
    half = receptive_field // 2
    return math.ceil(half / stride), (image_size - 1 - half) // stride


def negative_mask(
    height: int,
    width: int,
    occupied: torch.Tensor,
    distance: int,
) -> torch.Tensor:
    """Positions of a feature map that may serve as negatives.

    Args:
        height: feature map rows.
        width: feature map columns.
        occupied: ... × P × 2 (row, column) positions of the target and its inputs.
        distance: :func:`separation`; a position is a negative when it is at least this far
            (Chebyshev distance) from every occupied position.

    Returns:
        Boolean ... × (height·width) mask over the row-major flattened map.
    """
    # A position is excluded when it is near some occupied position along both axes: the count of
    # such positions is a (rows × P) @ (P × cols) product of the per-axis nearness indicators.
    lead = occupied.shape[:-2]
    points = occupied.reshape(-1, occupied.shape[-2], 2)
    rows = torch.arange(height, device=occupied.device)
    cols = torch.arange(width, device=occupied.device)
    near_row = ((rows[None, :, None] - points[:, None, :, 0]).abs() < distance).float()
    near_col = ((cols[None, None, :] - points[:, :, 1:2]).abs() < distance).float()
    excluded = torch.bmm(near_row, near_col) > 0  # B × H × W
    return ~excluded.reshape(*lead, height * width)


def negative_positions(
    height: int,
    width: int,
    target: tuple[int, int],
    inputs: Sequence[tuple[int, int]],
    receptive_field: int = NSE_RECEPTIVE_FIELD,
    stride: int = NSE_STRIDE,
) -> list[tuple[int, int]]:
    """Every negative position of one anchor, as (row, column) pairs.

    Raises:
        ConfigError: when the inputs overlap the target or each other.
    """
    occupied = [tuple(target), *map(tuple, inputs)]
    for a in range(len(occupied)):
        for b in range(a + 1, len(occupied)):
            if receptive_fields_overlap(occupied[a], occupied[b], receptive_field, stride):
                raise ConfigError(f"positions {occupied[a]} and {occupied[b]} overlap")
    mask = negative_mask(
        height, width, torch.tensor(occupied), separation(receptive_field, stride)
    )
    flat = mask.nonzero().flatten().tolist()
    return [(k // width, k % width) for k in flat]


def _sample_positions(
    count: tuple[int, ...],
    low: tuple[int, int],
    high: tuple[int, int],
    generator: torch.Generator | None,
) -> torch.Tensor:
    """count × 2 positions uniform in [low, high] (inclusive) per axis."""
    rows = torch.randint(low[0], high[0] + 1, count, generator=generator)
    cols = torch.randint(low[1], high[1] + 1, count, generator=generator)
    return torch.stack([rows, cols], dim=-1)


def _anchor_bounds(
    image_hw: tuple[int, int], offsets: Sequence[tuple[int, int]], what: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Bounds for an anchor so that anchor + every offset has its window inside the image."""
    (lo_r, hi_r), (lo_c, hi_c) = inside_range(image_hw[0]), inside_range(image_hw[1])
    low = (lo_r - min(o[0] for o in offsets), lo_c - min(o[1] for o in offsets))
    high = (hi_r - max(o[0] for o in offsets), hi_c - max(o[1] for o in offsets))
    if low[0] > high[0] or low[1] > high[1]:
        raise ConfigError(
            f"crops of {image_hw[0]}×{image_hw[1]} are too small for {what}: use larger crops"
        )
    return low, high


def check_crop(crop: int, task: str, sampling: str = "horizontal") -> None:
    """Raise :class:`ConfigError` when crop×crop images cannot hold the task's positions."""
    if task == "jigsaw":
        step = separation()
        _anchor_bounds((crop, crop), ((0, 0), (step, step)), "a 2×2 jigsaw")
    else:
        offsets = sampling_offsets(sampling, separation())
        _anchor_bounds((crop, crop), offsets, f"{sampling} sampling")


def _gather(flat: torch.Tensor, positions: torch.Tensor, width: int) -> torch.Tensor:
    """flat N×HW×C, positions N×...×2 → N×...×C."""
    n = flat.shape[0]
    index = (positions[..., 0] * width + positions[..., 1]).reshape(n, -1)
    picked = torch.gather(flat, 1, index.unsqueeze(-1).expand(-1, -1, flat.shape[-1]))
    return picked.reshape(*positions.shape[:-1], flat.shape[-1])


# ----------------------------------------------------------------------------------- tasks


@dataclass
class TaskResult:
    """Outcome of one pretext-task forward pass.

    Attributes:
        loss: mean loss (differentiable).
        correct: number of anchors / puzzles answered right (top-1).
        total: number of anchors / puzzles.
        mean_negatives: contrastive only: mean negatives per anchor (0 for jigsaw).
    """

    loss: torch.Tensor
    correct: int
    total: int
    mean_negatives: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)


class ContrastiveTask(nn.Module):
    """Contrastive prediction (InfoNCE) on the NSE features.

    Args:
        extractor: the NSE being trained (or frozen, to fit the predictor alone).
        predictor: P, with ``num_inputs`` matching the sampling.
        sampling: 'horizontal', 'vertical' or 'cross'.
        tau: τ of the similarity exp(τ·cos).
        anchors_per_image: targets sampled on each image's feature map per pass.
    """

    def __init__(
        self,
        extractor: NeuralStructureExtractor,
        predictor: ContrastivePredictor,
        sampling: str = "horizontal",
        tau: float = DEFAULT_TAU,
        anchors_per_image: int = 8,
    ) -> None:
        super().__init__()
        self.offsets = sampling_offsets(sampling, separation())
        if predictor.num_inputs != len(self.offsets):
            raise ConfigError(
                f"{sampling} sampling has {len(self.offsets)} inputs but the predictor takes "
                f"{predictor.num_inputs}"
            )
        self.extractor = extractor
        self.predictor = predictor
        self.sampling = sampling
        self.tau = tau
        self.anchors_per_image = anchors_per_image

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TaskResult:
        """Args:
            images: N×3×H×W crops in [0, 1] (H, W ≥ 100 for horizontal sampling).
            generator: CPU generator for the anchor positions (reproducible evaluation).

        Returns:
            The InfoNCE loss and the top-1 accuracy over the sampled anchors.
        """
        n = images.shape[0]
        low, high = _anchor_bounds(images.shape[-2:], self.offsets, f"{self.sampling} sampling")
        targets = _sample_positions((n, self.anchors_per_image), low, high, generator)
        targets = targets.to(images.device)
        offsets = torch.tensor(self.offsets, device=images.device)
        inputs = targets.unsqueeze(-2) + offsets  # N×K×M×2

        features = self.extractor(images)
        height, width = features.shape[-2:]
        flat = features.flatten(2).transpose(1, 2)  # N×HW×C
        prediction = self.predictor(_gather(flat, inputs, width))  # N×K×C

        occupied = torch.cat([targets.unsqueeze(-2), inputs], dim=-2)
        negatives = negative_mask(height, width, occupied, separation())
        labels = targets[..., 0] * width + targets[..., 1]
        candidates = negatives.scatter(-1, labels.unsqueeze(-1), True)
        # τ = 64 magnifies rounding: the similarities are computed in float32 even under autocast.
        with torch.autocast(images.device.type, enabled=False):
            logits = self.tau * torch.bmm(
                F.normalize(prediction.float(), dim=-1),
                F.normalize(flat.float(), dim=-1).transpose(1, 2),
            )  # N×K×HW, τ·cos
            logits = logits.masked_fill(~candidates, float("-inf"))
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        correct = int((logits.argmax(-1) == labels).sum())
        return TaskResult(loss, correct, labels.numel(), float(negatives.sum(-1).float().mean()))


class JigsawTask(nn.Module):
    """2×2 jigsaw on the NSE features: which of the 24 permutations shuffled the four tiles.

    Args:
        extractor: the NSE being trained (or frozen, to fit the head alone).
        head: J, a :class:`JigsawHead` with 4 tiles.
        puzzles_per_image: grids sampled on each image's feature map per pass.
    """

    def __init__(
        self, extractor: NeuralStructureExtractor, head: JigsawHead, puzzles_per_image: int = 8
    ) -> None:
        super().__init__()
        if head.num_tiles != 4:
            raise ConfigError("the jigsaw task uses a 2×2 grid: the head must take 4 tiles")
        step = separation()
        self.grid = ((0, 0), (0, step), (step, 0), (step, step))
        self.extractor = extractor
        self.head = head
        self.puzzles_per_image = puzzles_per_image
        self.register_buffer("permutations", torch.tensor(JIGSAW_PERMUTATIONS), persistent=False)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> TaskResult:
        """Args:
            images: N×3×H×W crops in [0, 1] (H, W ≥ 64).
            generator: CPU generator for grid positions and permutations.

        Returns:
            The cross-entropy loss and the classification accuracy.
        """
        n, k = images.shape[0], self.puzzles_per_image
        low, high = _anchor_bounds(images.shape[-2:], self.grid, "a 2×2 jigsaw")
        corners = _sample_positions((n, k), low, high, generator)
        labels = torch.randint(0, len(JIGSAW_PERMUTATIONS), (n, k), generator=generator)
        corners, labels = corners.to(images.device), labels.to(images.device)
        tiles_at = corners.unsqueeze(-2) + torch.tensor(self.grid, device=images.device)

        features = self.extractor(images)
        flat = features.flatten(2).transpose(1, 2)
        tiles = _gather(flat, tiles_at, features.shape[-1])  # N×K×4×C
        order = self.permutations[labels]  # N×K×4: shuffled[t] = tiles[order[t]]
        shuffled = torch.gather(tiles, 2, order.unsqueeze(-1).expand_as(tiles))
        logits = self.head(shuffled)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        correct = int((logits.argmax(-1) == labels).sum())
        return TaskResult(loss, correct, labels.numel())


PretextTask = ContrastiveTask | JigsawTask


# ----------------------------------------------------------------------------------- crops


def _as_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 images (how evaluation sets are kept in memory) → float in [0, 1]."""
    return image.float() / 255 if image.dtype == torch.uint8 else image


def random_crops(
    images: Sequence[torch.Tensor], size: int, count: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``count`` random size×size crops from randomly chosen images.

    Args:
        images: 3×H×W tensors, float in [0, 1] or uint8; those smaller than the crop are skipped.
        size: crop side.
        count: crops to return.
        generator: CPU generator.

    Returns:
        count×3×size×size, float in [0, 1].
    """
    usable = [im for im in images if im.shape[-2] >= size and im.shape[-1] >= size]
    if not usable:
        raise ConfigError(f"no image is at least {size}×{size} pixels")
    picks = torch.randint(0, len(usable), (count,), generator=generator).tolist()
    crops = []
    for p in picks:
        im = usable[p]
        top = int(torch.randint(0, im.shape[-2] - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, im.shape[-1] - size + 1, (1,), generator=generator))
        crops.append(_as_float(im[..., top : top + size, left : left + size]))
    return torch.stack(crops)


def dense_crops(
    images: Sequence[torch.Tensor], size: int, stride: int | None = None
) -> torch.Tensor:
    """Every size×size crop on a regular grid of each image (TPAMI 2021 §5.2: "densely sample").

    Args:
        images: 3×H×W tensors, float in [0, 1] or uint8.
        size: crop side.
        stride: grid step (default ``size``: crops side by side, not overlapping).

    Returns:
        K×3×size×size float (K may be 0 when every image is smaller than the crop).
    """
    step = stride or size
    crops = [
        _as_float(im[..., top : top + size, left : left + size])
        for im in images
        for top in range(0, im.shape[-2] - size + 1, step)
        for left in range(0, im.shape[-1] - size + 1, step)
    ]
    if not crops:
        return torch.empty(0, 3, size, size)
    return torch.stack(crops)


CropSource = Sequence[torch.Tensor] | Dataset


def draw_crops(
    source: CropSource, size: int, count: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A batch of random crops from images in memory or from a dataset of ``{"image"}`` crops.

    Args:
        source: 3×H×W tensors (see :func:`random_crops`), or a dataset such as
            :class:`spsr.train.nse_data.NSECropDataset` whose crops are size×size.
        size: crop side.
        count: crops to return.
        generator: CPU generator (it also seeds the dataset's own random cropping).
    """
    if isinstance(source, Dataset):
        length = len(source)  # type: ignore[arg-type]
        picks = torch.randint(0, length, (count,), generator=generator).tolist()
        seed = int(torch.randint(0, 1 << 62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            crops = torch.stack([source[i]["image"] for i in picks])
        if crops.shape[-1] != size or crops.shape[-2] != size:
            raise ConfigError(f"the dataset gives {crops.shape[-1]}-pixel crops, not {size}")
        return crops
    return random_crops(source, size, count, generator)


# ----------------------------------------------------------------------------------- fitting


def fit_task(
    task: PretextTask,
    images: CropSource,
    *,
    crop_size: int,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    train_extractor: bool = True,
    seed: int = 0,
) -> list[float]:
    """Train a pretext task in memory on random crops (Adam, constant learning rate).

    The long, resumable pretraining is the ``pretrain-nse`` stage; this loop serves short fits:
    re-fitting a head with the extractor frozen for evaluation, and tests.

    Args:
        task: a :class:`ContrastiveTask` or :class:`JigsawTask`.
        images: 3×H×W tensors (float in [0, 1] or uint8) to crop from, or a crop dataset.
        crop_size: crop side in pixels.
        steps: optimiser steps.
        batch_size: crops per step.
        lr: Adam learning rate.
        train_extractor: False keeps the NSE frozen and fits only the head / predictor.
        seed: seed of the crop and anchor sampling.

    Returns:
        The loss of every step.
    """
    head = task.predictor if isinstance(task, ContrastiveTask) else task.head
    flags = [p.requires_grad for p in task.extractor.parameters()]
    task.extractor.requires_grad_(train_extractor)
    task.extractor.train(train_extractor)
    head.train()
    params = [p for p in task.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    device = next(task.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        batch = draw_crops(images, crop_size, batch_size, generator).to(device)
        result = task(batch, generator)
        optimizer.zero_grad(set_to_none=True)
        result.loss.backward()
        optimizer.step()
        losses.append(float(result.loss.detach()))
    for p, flag in zip(task.extractor.parameters(), flags, strict=True):
        p.requires_grad_(flag)
    return losses


@dataclass
class TaskEvaluation:
    """Accuracy of a pretext task on a set of images.

    Attributes:
        accuracy: top-1 accuracy in [0, 1].
        samples: anchors (contrastive) or puzzles (jigsaw) scored.
        mean_negatives: contrastive only: mean negatives per anchor.
    """

    accuracy: float
    samples: int
    mean_negatives: float = 0.0


@torch.no_grad()
def evaluate_task(
    task: PretextTask,
    images: Sequence[torch.Tensor],
    *,
    crop_size: int,
    repeats: int = 10,
    batch_size: int = 16,
    seed: int = 0,
) -> TaskEvaluation:
    """Top-1 accuracy of a task on the dense crops of ``images`` (TPAMI 2021 §5.2, App. B.2).

    Each repeat draws new anchors (contrastive) or grids and permutations (jigsaw) on every crop;
    the paper uses 200×200 crops with one anchor per crop for contrastive prediction and 84×84
    crops for jigsaw, 10 repeats.

    Args:
        task: the task, with a fitted predictor / head.
        images: 3×H×W tensors, float in [0, 1] or uint8.
        crop_size: side of the dense crops.
        repeats: passes over all crops.
        batch_size: crops per forward pass.
        seed: seed of the anchor sampling.

    Returns:
        The accuracy, the number of samples, and the mean negatives per anchor.

    Raises:
        ConfigError: when no image is as large as one crop.
    """
    crops = dense_crops(images, crop_size)
    if crops.shape[0] == 0:
        raise ConfigError(f"no image is at least {crop_size}×{crop_size} pixels")
    was_training = task.training
    task.eval()
    device = next(task.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    correct = total = 0
    negatives = 0.0
    for _ in range(repeats):
        for start in range(0, crops.shape[0], batch_size):
            result = task(crops[start : start + batch_size].to(device), generator)
            correct += result.correct
            total += result.total
            negatives += result.mean_negatives * result.total
    task.train(was_training)
    return TaskEvaluation(correct / total, total, negatives / total)


# ----------------------------------------------------------------------------------- validation

#: The papers' evaluation crops: contrastive prediction on 200×200 (≈2000 negatives), jigsaw 84×84.
EVAL_CONTRASTIVE_CROP = 200
EVAL_JIGSAW_CROP = 84


@dataclass
class NSEScore:
    """One cell of the papers' NSE validation (TPAMI 2021 Fig. 6, Fig. 14–15).

    Attributes:
        dataset: name of the test set.
        task: ``contrastive`` (top-1 accuracy) or ``jigsaw`` (classification accuracy).
        accuracy: in [0, 1].
        samples: anchors / puzzles scored.
        chance: the accuracy of guessing (1 / (negatives + 1), or 1 / 24).
        mean_negatives: contrastive only.
    """

    dataset: str
    task: str
    accuracy: float
    samples: int
    chance: float
    mean_negatives: float = 0.0


def validate_nse(
    extractor: NeuralStructureExtractor,
    fit_images: CropSource,
    test_sets: dict[str, Sequence[torch.Tensor]],
    *,
    tasks: Sequence[str] = ("contrastive", "jigsaw"),
    sampling: str = "horizontal",
    fit_steps: int = 2000,
    fit_batch: int = 16,
    fit_lr: float = 1e-3,
    repeats: int = 10,
    predictor: ContrastivePredictor | None = None,
    head: JigsawHead | None = None,
    seed: int = 0,
) -> list[NSEScore]:
    """The papers' validation of an NSE: re-fit each task's head with F frozen, then score.

    TPAMI 2021 §5.2 / App. B.2: the predictor P′ (and the jigsaw classifier J′) are trained on the
    training set with the extractor's parameters fixed; contrastive top-1 accuracy is measured on
    200×200 crops (≈2000 negatives per anchor), jigsaw accuracy on 84×84 crops, densely cropped
    from each test image, anchors drawn anew in each of ``repeats`` passes.

    Args:
        extractor: the NSE (not modified).
        fit_images: training images (or crop dataset) to re-fit the heads on.
        test_sets: name → 3×H×W images (float in [0, 1] or uint8).
        tasks: which of ``contrastive`` / ``jigsaw`` to score.
        sampling: contrastive neighbours (``horizontal`` in the papers' Fig. 6).
        fit_steps: optimiser steps of each re-fit (0: use the given heads as they are).
        fit_batch: crops per re-fit step.
        fit_lr: Adam learning rate of the re-fit.
        repeats: evaluation passes.
        predictor: a trained predictor to start the re-fit from (fine-tuning), else a new one.
        head: a trained jigsaw head to start from, else a new one.
        seed: seed of the re-fit and of the anchors.

    Returns:
        One :class:`NSEScore` per task and test set (test sets with no image as large as the
        task's crop are left out).
    """
    extractor = copy.deepcopy(extractor).eval()
    channels = extractor.out_channels
    scores: list[NSEScore] = []
    for task_name in tasks:
        if task_name == "contrastive":
            crop = EVAL_CONTRASTIVE_CROP
            m = len(sampling_offsets(sampling, separation()))
            p = ContrastivePredictor(channels, m) if predictor is None else copy.deepcopy(predictor)
            task: PretextTask = ContrastiveTask(extractor, p, sampling, anchors_per_image=16)
        elif task_name == "jigsaw":
            crop = EVAL_JIGSAW_CROP
            j = copy.deepcopy(head) if head is not None else JigsawHead(channels)
            task = JigsawTask(extractor, j, puzzles_per_image=16)
        else:
            raise ConfigError(f"unknown NSE task {task_name!r} (contrastive, jigsaw)")
        device = next(extractor.parameters()).device
        task.to(device)
        if fit_steps > 0 and isinstance(fit_images, Sequence) and not any(
            im.shape[-2] >= crop and im.shape[-1] >= crop for im in fit_images
        ):
            raise ConfigError(
                f"no training image holds a {crop}×{crop} crop to re-fit the {task_name} head on"
            )
        if fit_steps > 0:
            fit_task(task, fit_images, crop_size=crop, steps=fit_steps, batch_size=fit_batch,
                     lr=fit_lr, train_extractor=False, seed=seed)
        for name, images in test_sets.items():
            if not any(im.shape[-2] >= crop and im.shape[-1] >= crop for im in images):
                continue
            result = evaluate_task(task, images, crop_size=crop, repeats=repeats, seed=seed)
            chance = (1 / (result.mean_negatives + 1) if task_name == "contrastive"
                      else 1 / len(JIGSAW_PERMUTATIONS))
            scores.append(NSEScore(name, task_name, result.accuracy, result.samples, chance,
                                   result.mean_negatives))
    return scores
