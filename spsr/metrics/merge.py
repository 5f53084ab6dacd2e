"""``spsr eval --merge``: the partial results of ``spsr eval --shard K/N --json`` combined into
the table and JSON one process would have written."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spsr.errors import ConfigError
from spsr.metrics.registry import EvalSettings
from spsr.metrics.score_folders import DatasetResult

#: Keys of a partial result that differ between shards (everything else must agree).
SHARD_KEYS = ("shard", "datasets")


@dataclass
class MergedSuite:
    """What the table and JSON writers need of a :class:`~spsr.metrics.registry.MetricSuite`,
    rebuilt from a results file (no metric model is loaded)."""

    settings: EvalSettings
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.settings.metrics

    def describe(self) -> dict[str, object]:
        return dict(self.description)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def merge_results(paths: list[Path]) -> tuple[list[DatasetResult], MergedSuite, dict[str, object]]:
    """Read shard results and combine them.

    Returns:
        ``(results, suite, extra)``: one :class:`DatasetResult` per dataset and model with every
        shard's images in name order (as one process lists them), a suite for the writers, and
        the non-suite keys of the results (scale, mode, models...), shard removed.

    Raises:
        ConfigError: a file that is not a shard's results (or whose settings do not record the
            scoring conventions), shards of different runs (settings, models, shard count), or a
            missing or repeated shard.
    """
    parts = []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read it as spsr eval results ({exc})") from None
        if not isinstance(payload, dict) or "datasets" not in payload or "settings" not in payload:
            raise ConfigError(f"{path}: not a results file of spsr eval --json")
        if not isinstance(payload.get("shard"), str):
            raise ConfigError(f"{path}: not a shard's results (written without --shard)")
        parts.append((Path(path), payload))
    if not parts:
        raise ConfigError("--merge needs the shards' results files")
    parts.sort(key=lambda part: str(part[1]["shard"]).split("/")[0].zfill(9))
    first_path, first = parts[0]
    common = {k: v for k, v in first.items() if k not in SHARD_KEYS}
    count = int(first["shard"].split("/")[1])
    seen: dict[int, Path] = {}
    for path, payload in parts:
        index, n = (int(x) for x in payload["shard"].split("/"))
        if n != count:
            raise ConfigError(f"{path}: shard {payload['shard']} is of {n} shards, {first_path} of {count}")
        if index in seen:
            raise ConfigError(f"{path}: shard {index}/{n} is also in {seen[index]}")
        seen[index] = path
        other = {k: v for k, v in payload.items() if k not in SHARD_KEYS}
        if other != common:
            differing = sorted(k for k in set(other) | set(common) if other.get(k) != common.get(k))
            raise ConfigError(f"{path}: not the same evaluation as {first_path} (differs in "
                              f"{', '.join(differing)})")
    missing = [str(i) for i in range(count) if i not in seen]
    if missing:
        raise ConfigError(f"shard(s) {', '.join(missing)} of {count} missing; give every shard's results")
    combined: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for _, payload in parts:
        for dataset, entry in payload["datasets"].items():
            for model, scores in entry["models"].items():
                images = combined.setdefault((dataset, model), {})
                for name, values in scores["images"].items():
                    images[name] = {m: _number(v) for m, v in values.items()}
    results = [DatasetResult(dataset, model, sorted(images.items())) for (dataset, model), images in combined.items()]
    try:
        settings = EvalSettings.from_record(first["settings"])
    except ConfigError as exc:
        raise ConfigError(f"{first_path}: {exc}") from None
    describe_keys = ("protocol", "settings", "conventions", "better")
    suite = MergedSuite(settings, {k: first[k] for k in describe_keys if k in first})
    extra = {k: v for k, v in common.items() if k not in describe_keys}
    return results, suite, extra
