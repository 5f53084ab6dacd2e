"""The papers' validation of an NSE (TPAMI 2021 §5.2, App. B.2, Fig. 6, Fig. 14–15).

The heads of both pretext tasks are re-fitted with the extractor frozen, then scored on dense
crops of test images: contrastive top-1 accuracy on 200×200 crops (≈2000 negatives per anchor),
jigsaw accuracy on 84×84 crops. :func:`evaluate_run` does the whole evaluation of a
``pretrain-nse`` run folder and writes its ``nse_eval.json``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spsr.errors import ConfigError
from spsr.nse import DEFAULT_FIT_STEPS, EVAL_PROTOCOLS, NSE_TASKS
from spsr.nse.contrastive import ContrastiveTask
from spsr.nse.extractor import (
    JIGSAW_PERMUTATIONS,
    ContrastivePredictor,
    JigsawHead,
    NeuralStructureExtractor,
)
from spsr.nse.fit import fit_task
from spsr.nse.sampling import CropSource, dense_crops
from spsr.nse.tasks import PretextTask, TaskHead, check_task, make_task, new_head


@dataclass
class TaskEvaluation:
    """Accuracy of a pretext task on a set of images.

    Attributes:
        accuracy: top-1 accuracy in [0, 1].
        samples: anchors (contrastive) or puzzles (jigsaw) scored.
        mean_negatives: contrastive only: mean negatives per anchor.
        repeat_accuracies: the accuracy of each repeat (pass over the crops), in order.
    """

    accuracy: float
    samples: int
    mean_negatives: float = 0.0
    repeat_accuracies: list[float] = dataclasses.field(default_factory=list)

    @property
    def std(self) -> float:
        """Sample standard deviation (n − 1) of the per-repeat accuracies; 0 for one repeat."""
        return _sample_std(self.repeat_accuracies)


def _sample_std(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return float((sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5)


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

    Each repeat draws new anchors (contrastive) or grids and permutations (jigsaw) on every crop,
    as many per crop as the task module's ``anchors_per_image`` / ``puzzles_per_image``; the paper
    uses 200×200 crops with one target per crop for contrastive prediction, 84×84 crops with one
    puzzle each for jigsaw, 10 repeats (:func:`validate_nse` builds the task that way by default).

    Args:
        task: the task, with a fitted predictor / head.
        images: 3×H×W tensors, float in [0, 1] or uint8.
        crop_size: side of the dense crops.
        repeats: passes over all crops.
        batch_size: crops per forward pass.
        seed: seed of the anchor sampling.

    Returns:
        The accuracy pooled over all repeats (every repeat scores as many samples, so it is the
        mean of the repeats' accuracies), the number of samples, the mean negatives per anchor,
        and the accuracy of each repeat (their spread is the ± over the papers' 10 repeats).

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
    per_repeat: list[float] = []
    for _ in range(repeats):
        hits = seen = 0
        for start in range(0, crops.shape[0], batch_size):
            result = task(crops[start : start + batch_size].to(device), generator)
            hits += result.correct
            seen += result.total
            negatives += result.mean_negatives * result.total
        per_repeat.append(hits / seen)
        correct += hits
        total += seen
    task.train(was_training)
    return TaskEvaluation(correct / total, total, negatives / total, per_repeat)

# ----------------------------------------------------------------------------------- validation

#: The papers' evaluation crops: contrastive prediction on 200×200 (≈2000 negatives), jigsaw 84×84.
EVAL_CONTRASTIVE_CROP = 200
EVAL_JIGSAW_CROP = 84
EVAL_CROPS = {"contrastive": EVAL_CONTRASTIVE_CROP, "jigsaw": EVAL_JIGSAW_CROP}
#: Samples drawn per test crop and repeat, by protocol (:data:`spsr.nse.EVAL_PROTOCOLS`): the
#: paper's one target per feature map / one grid per patch, or 16 of each.
EVAL_SAMPLES_PER_CROP = {"paper": 1, "many-anchors": 16}


def check_protocol(protocol: str) -> None:
    """Raise :class:`ConfigError` unless ``protocol`` is one of :data:`spsr.nse.EVAL_PROTOCOLS`."""
    if protocol not in EVAL_PROTOCOLS:
        raise ConfigError(
            f"unknown NSE evaluation protocol {protocol!r}; choose {' or '.join(EVAL_PROTOCOLS)}"
        )


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
        std: sample standard deviation of the accuracy over the repeats.
        repeat_accuracies: the accuracy of each repeat.
    """

    dataset: str
    task: str
    accuracy: float
    samples: int
    chance: float
    mean_negatives: float = 0.0
    std: float = 0.0
    repeat_accuracies: list[float] = dataclasses.field(default_factory=list)


def validate_nse(
    extractor: NeuralStructureExtractor,
    fit_images: CropSource,
    test_sets: dict[str, Sequence[torch.Tensor]],
    *,
    tasks: Sequence[str] = NSE_TASKS,
    sampling: str = "horizontal",
    fit_steps: int = DEFAULT_FIT_STEPS,
    fit_batch: int = 16,
    fit_lr: float = 1e-3,
    repeats: int = 10,
    protocol: str = "paper",
    predictor: ContrastivePredictor | None = None,
    head: JigsawHead | None = None,
    seed: int = 0,
) -> list[NSEScore]:
    """The papers' validation of an NSE: re-fit each task's head with F frozen, then score.

    TPAMI 2021 §5.2 / App. B.2: the predictor P′ (and the jigsaw classifier J′) are trained on the
    training set with the extractor's parameters fixed; contrastive top-1 accuracy is measured on
    200×200 crops densely cropped from each test image, one target per crop's feature map
    (≈2000 negatives), jigsaw accuracy on 84×84 crops, one 2×2 grid per crop; targets and grids
    are drawn anew in each of ``repeats`` (10) passes and the accuracy is reported as the mean ±
    the standard deviation over the passes. ``protocol="many-anchors"`` draws 16 targets / grids
    per crop instead (more samples per pass, a smaller spread; not the paper's numbers).
    The re-fit itself draws 16 targets / grids per training crop, the training default.

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
        protocol: ``paper`` (one sample per test crop) or ``many-anchors`` (16).
        predictor: a trained predictor to start the re-fit from (fine-tuning), else a new one.
        head: a trained jigsaw head to start from, else a new one.
        seed: seed of the re-fit and of the anchors.

    Returns:
        One :class:`NSEScore` per task and test set (test sets with no image as large as the
        task's crop are left out).
    """
    check_protocol(protocol)
    extractor = copy.deepcopy(extractor).eval()
    channels = extractor.out_channels
    scores: list[NSEScore] = []
    for task_name in tasks:
        check_task(task_name)
        given: TaskHead | None = predictor if task_name == "contrastive" else head
        crop = EVAL_CROPS[task_name]
        if given is None:
            fresh = new_head(task_name, channels, sampling=sampling)
        else:
            fresh = copy.deepcopy(given)
        task = make_task(extractor, fresh, sampling=sampling, per_image=16)
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
        per_crop = EVAL_SAMPLES_PER_CROP[protocol]
        if isinstance(task, ContrastiveTask):
            task.anchors_per_image = per_crop
        else:
            task.puzzles_per_image = per_crop
        for name, images in test_sets.items():
            if not any(im.shape[-2] >= crop and im.shape[-1] >= crop for im in images):
                continue
            result = evaluate_task(task, images, crop_size=crop, repeats=repeats, seed=seed)
            chance = (1 / (result.mean_negatives + 1) if task_name == "contrastive"
                      else 1 / len(JIGSAW_PERMUTATIONS))
            scores.append(NSEScore(name, task_name, result.accuracy, result.samples, chance,
                                   result.mean_negatives, result.std, result.repeat_accuracies))
    return scores


# ----------------------------------------------------------------------------------- a run folder


@dataclass
class RunEvaluation:
    """The evaluation of a ``pretrain-nse`` run, as written to its ``nse_eval.json``.

    Attributes:
        run: the run folder (or NSE file's folder) scored.
        trained_task: the task the NSE was trained by (empty when its file does not say).
        tasks: the tasks scored, in order.
        test_sets: the test sets' names, in order.
        scores: one :class:`NSEScore` per task and test set large enough for the task's crop.
        payload: the JSON document written to ``written``.
        written: the path of ``nse_eval.json``.
    """

    run: Path
    trained_task: str
    tasks: list[str]
    test_sets: list[str]
    scores: list[NSEScore]
    payload: dict[str, Any]
    written: Path

    @property
    def skipped_sets(self) -> list[str]:
        """Test sets with no image as large as any scored task's crop."""
        return [n for n in self.test_sets if not any(s.dataset == n for s in self.scores)]

    def score(self, dataset: str, task: str) -> NSEScore | None:
        """The score of ``task`` on ``dataset`` (None when it was skipped)."""
        return next((s for s in self.scores if s.dataset == dataset and s.task == task), None)


def evaluate_run(
    run: Path,
    data: Path | None,
    tests: dict[str, Path],
    *,
    tasks: Sequence[str] = NSE_TASKS,
    fit_steps: int = DEFAULT_FIT_STEPS,
    fit_images: int = 64,
    repeats: int = 10,
    protocol: str = "paper",
    device: str = "cpu",
    seed: int = 0,
    say: Callable[[str], None] | None = None,
) -> RunEvaluation:
    """Score the NSE of a ``pretrain-nse`` run as the papers do and write ``RUN/nse_eval.json``.

    Each task's head is re-fitted on the training images with the extractor frozen, starting from
    the run's trained head for the task it was trained by (:func:`validate_nse`).

    Args:
        run: the run folder holding ``nse.safetensors`` (and maybe ``nse_head.safetensors``).
        data: training images to re-fit the heads on (None is an error, raised after the NSE
            is found: the caller looks up the run's recorded ``data.path``).
        tests: test set name → folder / image / list file.
        tasks: the tasks to score.
        fit_steps: optimiser steps of each re-fit.
        fit_images: at most this many training images are held in memory for the re-fit.
        repeats: evaluation passes over the test crops.
        protocol: ``paper`` (one target / grid per test crop, §5.2) or ``many-anchors`` (16).
        device: a resolved device (``cpu``, ``cuda:0``...).
        seed: seed of the re-fit and of the anchors.
        say: called with a line of progress (what is loaded, which head is re-fitted).

    Raises:
        ConfigError / CheckpointError: no NSE in ``run``, no training data, images too small.
    """
    from spsr.atomic import write_text_atomic
    from spsr.nse.data import load_images
    from spsr.nse.files import load_head, load_nse, nse_metadata
    from spsr.run_folder import NSE_EVAL_FILE

    def tell(message: str) -> None:
        if say is not None:
            say(message)

    for task in tasks:
        check_task(task)
    check_protocol(protocol)
    nse = load_nse(run)
    meta = nse_metadata(run)
    if data is None:
        raise ConfigError("--evaluate needs DATA: the training images to re-fit the heads on")
    tell(f"loading up to {fit_images} training images from {data} and {len(tests)} test set(s)")
    fit = load_images(data, limit=fit_images)
    test_sets: dict[str, Sequence[torch.Tensor]] = {n: load_images(p) for n, p in tests.items()}
    trained = meta.get("task", "")
    sampling = meta.get("sampling", "horizontal")
    head = load_head(run, nse.out_channels) if trained else None
    nse.to(device)
    scores: list[NSEScore] = []
    for task in tasks:
        trained_head = head if trained == task else None
        tell(f"re-fitting the {task} head on frozen features ({fit_steps} steps, {device})")
        scores += validate_nse(
            nse, fit, test_sets, tasks=(task,), sampling=sampling, fit_steps=fit_steps,
            repeats=repeats, protocol=protocol, seed=seed,
            predictor=trained_head if isinstance(trained_head, ContrastivePredictor) else None,
            head=trained_head if isinstance(trained_head, JigsawHead) else None,
        )
    names = list(test_sets)
    missing = [n for n in names if not any(s.dataset == n for s in scores)]
    payload = {
        "nse": str(run), "trained_task": trained, "sampling": sampling,
        "fit": {"data": str(data), "images": len(fit), "steps": fit_steps}, "repeats": repeats,
        "protocol": protocol, "samples_per_crop": EVAL_SAMPLES_PER_CROP[protocol],
        "crops": dict(EVAL_CROPS),
        "results": [dataclasses.asdict(s) for s in scores],
        "skipped_sets": missing,
    }
    written = run / NSE_EVAL_FILE
    write_text_atomic(written, json.dumps(payload, indent=2) + "\n")
    return RunEvaluation(run, trained, list(tasks), names, scores, payload, written)
