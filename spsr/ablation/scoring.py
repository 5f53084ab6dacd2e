"""Scoring one ablation row exactly as ``spsr eval --weights`` does, with its scores kept in the
run folder (``eval.json``) so a re-run only scores what changed.

The scores of a dataset are reused when the weights file (size and modification time), the
metric settings, the scale, the tiling and precision, and the dataset's folder and file names are
all the same as when they were computed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spsr.atomic import write_text_atomic
from spsr.metrics.registry import EvalSettings, MetricSuite
from spsr.metrics.score_folders import (
    DatasetResult,
    Upscaler,
    dataset_name,
    list_images,
    score_upscaler,
)
from spsr.untrusted import read_json

EVAL_FORMAT = "spsr-ablation-eval"


@dataclass(frozen=True)
class EvalDataset:
    """An HR dataset to evaluate on.

    Attributes:
        name: the table's label (``Set14``), unique within the evaluation.
        hr_dir: the folder of HR images.
        images: its image files, sorted.
    """

    name: str
    hr_dir: Path
    images: tuple[Path, ...]


@dataclass(frozen=True)
class EvalSpec:
    """How every row is evaluated.

    Attributes:
        datasets: the HR datasets.
        settings: metrics and conventions (as ``spsr eval``).
        scale: the models' scale (LR images are MATLAB-bicubic downscaled HR images).
        tile: tiled inference, tile size in LR pixels (0: whole images).
        precision: inference precision (``auto`` | ``fp32`` | ``bf16`` | ``fp16``).
    """

    datasets: tuple[EvalDataset, ...]
    settings: EvalSettings
    scale: int
    tile: int = 256
    precision: str = "auto"


def eval_datasets(hr_dirs: Sequence[str | os.PathLike[str]]) -> tuple[EvalDataset, ...]:
    """The datasets of ``hr_dirs`` with unique names (``Set5``, ``Set5 (2)``...).

    Raises:
        MetricInputError: a folder that does not exist or holds no image.
    """
    out: list[EvalDataset] = []
    taken: set[str] = set()
    for folder in hr_dirs:
        path = Path(folder).expanduser().resolve()
        name, n = dataset_name(path), 2
        label = name
        while label in taken:
            label, n = f"{name} ({n})", n + 1
        taken.add(label)
        out.append(EvalDataset(label, path, tuple(list_images(path))))
    return tuple(out)


def _settings_fingerprint(spec: EvalSpec) -> dict[str, Any]:
    s, scoring = spec.settings, spec.settings.scoring
    return {
        "metrics": list(s.metrics),
        "crop_border": scoring.crop_border,
        "y_channel": scoring.y_channel,
        "pi_border": scoring.pi_border,
        "protocol": scoring.protocol,
        "ssim_downsample": scoring.ssim_downsample,
        "lpips_backbone": s.lpips_backbone,
        "ma_model": s.ma_model,
        "scale": spec.scale,
        "tile": spec.tile,
        "precision": spec.precision,
    }


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def dataset_key(spec: EvalSpec, dataset: EvalDataset) -> str:
    """Fingerprint of one dataset's scores: settings, folder and file names."""
    return _hash(
        [_settings_fingerprint(spec), str(dataset.hr_dir), [p.name for p in dataset.images]]
    )


def eval_key(spec: EvalSpec) -> str:
    """Fingerprint of a whole evaluation (every dataset, in order)."""
    return _hash([dataset_key(spec, d) for d in spec.datasets])


def weights_fingerprint(source: str | os.PathLike[str]) -> dict[str, Any]:
    """The weights file a source resolves to, with its size and modification time."""
    from spsr.checkpoints import resolve_weights

    path = resolve_weights(source)
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path, str(path))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == EVAL_FORMAT else {}


def stored_scores_current(path: str | os.PathLike[str], key: str, source: str) -> bool:
    """Whether ``path`` (a run's ``eval.json``) holds every score of evaluation ``key`` for the
    weights ``source`` as it is now."""
    stored = _read(Path(path))
    if stored.get("key") != key:
        return False
    try:
        return stored.get("weights") == weights_fingerprint(source)
    except Exception:  # noqa: BLE001 - missing or unreadable weights: not current
        return False


def model_upscaler(source: str, spec: EvalSpec, device: str) -> Upscaler:
    """``spsr eval --weights``'s upscaler (:func:`spsr.infer.session.load_eval_upscaler`)."""
    from spsr.infer.session import load_eval_upscaler

    upscaler, _ = load_eval_upscaler(source, spec.scale, spec.tile, device, spec.precision)
    return upscaler


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _float(value: Any) -> float:
    return float(value)  # "nan" / "inf" strings come back as floats too


def evaluate_row(
    source: str,
    spec: EvalSpec,
    suite: MetricSuite,
    label: str,
    results_file: str | os.PathLike[str],
    device: str = "cpu",
    on_image: Callable[[str], None] | None = None,
) -> tuple[list[DatasetResult], int]:
    """Scores of the weights ``source`` on every dataset, reusing what ``results_file`` holds.

    Args:
        source: weights file or run folder.
        spec: the evaluation.
        suite: the metrics (built once for all rows).
        label: the row's name in the results.
        results_file: the run's ``eval.json`` (read, then rewritten atomically).
        device: where the model runs.
        on_image: progress callback, called per image scored.

    Returns:
        One result per dataset, and how many datasets were scored now (0: all reused).
    """
    path = Path(results_file)
    stored = _read(path)
    weights = weights_fingerprint(source)
    same_weights = stored.get("weights") == weights
    stored_sets = stored.get("datasets", {}) if same_weights else {}
    upscale: Upscaler | None = None
    results, entries, scored = [], {}, 0
    for dataset in spec.datasets:
        key = dataset_key(spec, dataset)
        entry = stored_sets.get(dataset.name)
        if isinstance(entry, dict) and entry.get("key") == key:
            result = DatasetResult(
                dataset.name,
                label,
                [
                    (name, {m: _float(v) for m, v in scores.items()})
                    for name, scores in entry["images"].items()
                ],
            )
        else:
            if upscale is None:
                upscale = model_upscaler(source, spec, device)
            result = score_upscaler(
                list(dataset.images),
                upscale,
                suite,
                spec.scale,
                dataset.name,
                label,
                on_image=on_image,
            )
            scored += 1
        results.append(result)
        entries[dataset.name] = {
            "key": key,
            "hr_dir": str(dataset.hr_dir),
            "mean": {m: _number(v) for m, v in result.means().items()},
            "images": {n: {m: _number(v) for m, v in s.items()} for n, s in result.images},
        }
    key = eval_key(spec)
    if scored == 0 and same_weights and stored.get("key") == key:
        return results, 0  # everything reused: leave the file as it is
    payload = {
        "format": EVAL_FORMAT,
        "key": key,
        "weights": weights,
        **suite.describe(),
        "scale": spec.scale,
        "datasets": entries,
    }
    write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return results, scored
