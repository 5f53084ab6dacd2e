"""Scoring whole folders: pairing SR results with HR images, running models on bicubic LR images,
and turning the scores into tables, CSV and JSON.

The CLI (``spsr eval``) only parses options, shows progress and renders; everything here is plain
library code.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spsr.atomic import write_text_atomic  # noqa: F401 - the old import path (tests/test_atomic.py)
from spsr.data.image_io import is_image_file, read_rgb, write_image
from spsr.data.pairing import canonical_reference_stem, match_stem, pairing_key  # noqa: F401 - re-exported
from spsr.metrics.conventions import MetricInputError
from spsr.metrics.registry import METRICS, MetricSuite
from spsr.ops import bicubic_degrade, imresize_np, mod_crop

ImageCallback = Callable[[str], None]


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly in ``folder``, sorted by name.

    Raises:
        MetricInputError: the folder does not exist or holds no image.
    """
    path = Path(folder)
    if not path.is_dir():
        raise MetricInputError(f"{path} is not a folder")
    images = sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p))
    if not images:
        raise MetricInputError(f"{path} holds no image files")
    return images


@dataclass
class Pairing:
    """SR files matched with HR files by name stem.

    Attributes:
        pairs: ``(name, sr_path, hr_path)``, sorted by name (the HR stem).
        unmatched_sr: SR files with no HR counterpart.
        unmatched_hr: HR files with no SR counterpart.
    """

    pairs: list[tuple[str, Path, Path]]
    unmatched_sr: list[Path] = field(default_factory=list)
    unmatched_hr: list[Path] = field(default_factory=list)


def pair_images(sr_dir: str | os.PathLike[str], hr_dir: str | os.PathLike[str]) -> Pairing:
    """Match SR results with HR images by name (:func:`spsr.data.pairing.match_stem`'s rules).

    Raises:
        MetricInputError: nothing pairs, or two SR files claim the same HR image.
    """
    sr_files, hr_files = list_images(sr_dir), list_images(hr_dir)
    hr_by_stem: dict[str, Path] = {}
    for p in hr_files:  # references by their stem less _HR / _GT (the full stem if that clashes)
        stem = canonical_reference_stem(p.stem)
        hr_by_stem[stem if stem not in hr_by_stem else p.stem] = p
    references = list(hr_by_stem)
    claimed: dict[Path, Path] = {}
    unmatched_sr: list[Path] = []
    for sr in sr_files:
        ref_stem = match_stem(sr.stem, references)
        hr = hr_by_stem[ref_stem] if ref_stem is not None else None
        if hr is None:
            unmatched_sr.append(sr)
            continue
        if hr in claimed:
            raise MetricInputError(
                f"{claimed[hr].name} and {sr.name} both match {hr.name}; keep one per HR image"
            )
        claimed[hr] = sr
    if not claimed:
        raise MetricInputError(
            f"no file in {sr_dir} matches a file in {hr_dir} by name "
            f"(e.g. {sr_files[0].name} vs {hr_files[0].name})"
        )
    pairs = sorted((hr.stem, sr, hr) for hr, sr in claimed.items())
    unmatched_hr = [p for p in hr_files if p not in claimed]
    return Pairing(pairs, unmatched_sr, unmatched_hr)


def dataset_name(folder: str | os.PathLike[str]) -> str:
    """``benchmark/Set5/HR`` → ``Set5``; otherwise the folder's own name."""
    path = Path(folder).resolve()
    generic = {"hr", "gt", "original", "images", "image", "img", "sr", "results"}
    if path.name.lower() in generic and path.parent.name:
        return path.parent.name
    return path.name


@dataclass
class DatasetResult:
    """Scores of one model (or one SR folder) on one dataset.

    Attributes:
        dataset: dataset name.
        model: row label.
        images: ``(image name, {metric: value})`` per image.
    """

    dataset: str
    model: str
    images: list[tuple[str, dict[str, float]]] = field(default_factory=list)

    def means(self) -> dict[str, float]:
        """Mean of every metric over the images (the papers' table entries)."""
        if not self.images:
            return {}
        names = list(self.images[0][1])
        return {m: float(np.mean([s[m] for _, s in self.images])) for m in names}


def match_hr_size(sr: np.ndarray, hr: np.ndarray, scale: int, names: str) -> np.ndarray:
    """The HR image cropped to the SR size: as is, or mod-cropped to the scale.

    Raises:
        MetricInputError: the sizes do not fit even after mod-cropping (wrong ``--scale``?).
    """
    if sr.shape[:2] == hr.shape[:2]:
        return hr
    cropped = mod_crop(hr, scale)
    if sr.shape[:2] == cropped.shape[:2]:
        return cropped
    raise MetricInputError(
        f"{names}: SR is {sr.shape[1]}x{sr.shape[0]} but HR is {hr.shape[1]}x{hr.shape[0]} "
        f"(x{scale} mod-crop: {cropped.shape[1]}x{cropped.shape[0]}); is --scale right?"
    )


def score_pairs(
    pairing: Pairing,
    suite: MetricSuite,
    scale: int,
    dataset: str,
    model: str,
    on_image: ImageCallback | None = None,
) -> DatasetResult:
    """Score existing SR images against their HR images.

    Args:
        pairing: from :func:`pair_images`.
        suite: the metrics.
        scale: used to mod-crop HR images whose size is not a multiple of it.
        dataset: dataset name for the result.
        model: row label.
        on_image: called with each image name when done (progress).
    """
    result = DatasetResult(dataset, model)
    for name, sr_path, hr_path in pairing.pairs:
        sr = read_rgb(sr_path)
        hr = match_hr_size(sr, read_rgb(hr_path), scale, f"{sr_path.name} / {hr_path.name}")
        result.images.append((name, suite.score(sr, hr)))
        if on_image:
            on_image(name)
    return result


Upscaler = Callable[[np.ndarray], np.ndarray]


def bicubic_upscaler(scale: int) -> Upscaler:
    """The papers' baseline: MATLAB bicubic upscaling of the 8-bit LR image."""
    return lambda lr: imresize_np(lr, float(scale))


def score_upscaler(
    hr_paths: Sequence[Path],
    upscale: Upscaler,
    suite: MetricSuite,
    scale: int,
    dataset: str,
    model: str,
    save_dir: Path | None = None,
    on_image: ImageCallback | None = None,
) -> DatasetResult:
    """Degrade each HR image (mod-crop, MATLAB bicubic ↓scale), upscale, score.

    Args:
        hr_paths: HR images.
        upscale: ``(h, w, 3) uint8 LR → (h*scale, w*scale, 3) uint8 SR``.
        suite: the metrics.
        scale: the scale factor.
        dataset: dataset name.
        model: row label.
        save_dir: write each SR image here as ``<stem>.png`` when given.
        on_image: progress callback.

    Raises:
        MetricInputError: an HR image smaller than the scale, or the upscaler returned the wrong
            size (a model of another scale).
    """
    result = DatasetResult(dataset, model)
    for path in hr_paths:
        hr = read_rgb(path)
        if hr.shape[0] < scale or hr.shape[1] < scale:
            raise MetricInputError(f"{path}: HR image {hr.shape[1]}x{hr.shape[0]} is smaller than the "
                                   f"scale x{scale}; there is no LR image to upscale")
        hr, lr = bicubic_degrade(hr, scale)
        sr = upscale(lr)
        if sr.shape != hr.shape:
            raise MetricInputError(
                f"{model} turned a {lr.shape[1]}x{lr.shape[0]} LR image into "
                f"{sr.shape[1]}x{sr.shape[0]}, expected {hr.shape[1]}x{hr.shape[0]} (x{scale})"
            )
        if save_dir is not None:
            write_image(save_dir / f"{path.stem}.png", sr)
        result.images.append((path.stem, suite.score(sr, hr)))
        if on_image:
            on_image(path.stem)
    return result


def best_models(results: Iterable[DatasetResult]) -> dict[str, set[str]]:
    """For one dataset's rows: metric → labels of the best row(s) (ties all marked)."""
    rows = [(r.model, r.means()) for r in results]
    best: dict[str, set[str]] = {}
    if not rows:
        return best
    for metric in rows[0][1]:
        values = [(label, means[metric]) for label, means in rows if math.isfinite(means[metric])]
        if not values:
            continue
        pick = max if METRICS[metric].higher_is_better else min
        target = pick(v for _, v in values)
        best[metric] = {label for label, v in values if v == target}
    return best


def results_csv(results: Sequence[DatasetResult], protocol: str | None = None) -> str:
    """Per-image scores as CSV: ``dataset, model, image, [protocol,] <metrics...>``.

    Args:
        results: the scores.
        protocol: the protocol label (:attr:`Scoring.label`) for a ``protocol`` column; None: none.
    """
    metrics: list[str] = []
    for r in results:
        for _, scores in r.images:
            metrics += [m for m in scores if m not in metrics]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    tag = [] if protocol is None else [protocol]
    writer.writerow(["dataset", "model", "image", *(["protocol"] if tag else []), *metrics])
    for r in results:
        for name, scores in r.images:
            values = (repr(scores.get(m, "")) for m in metrics)
            writer.writerow([r.dataset, r.model, name, *tag, *values])
    return buf.getvalue()


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def results_json(
    results: Sequence[DatasetResult], suite: MetricSuite, extra: dict[str, object] | None = None
) -> str:
    """Everything as JSON: protocol, settings, conventions, means and per-image scores per dataset
    and model."""
    datasets: dict[str, dict[str, object]] = {}
    for r in results:
        entry = datasets.setdefault(r.dataset, {"models": {}, "best": {}})
        entry["models"][r.model] = {  # type: ignore[index]
            "mean": {m: _json_number(v) for m, v in r.means().items()},
            "images": {n: {m: _json_number(v) for m, v in s.items()} for n, s in r.images},
        }
    for name, entry in datasets.items():
        rows = [r for r in results if r.dataset == name]
        entry["best"] = {m: sorted(labels) for m, labels in best_models(rows).items()}
    payload = {**suite.describe(), **(extra or {}), "datasets": datasets}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


