"""Turn a finished training run into a built-in weights file, with the whole pipeline's provenance.

``spsr/tools/train_default_models.sh`` ends with this: the run's generator is written to
``spsr/assets/weights/spsr_<name>_x4.safetensors`` and its metadata ``provenance`` says how it was
made: the pipeline script, the command lines of every stage it went through (the run itself and
the runs it was initialised from or used, e.g. the PSNR pre-training and the NSE), the training
data, iterations, wall time, and the scores ``spsr eval --json`` measured for it.

    python -m spsr.tools.bundle_weights work/perceptual -o spsr/assets/weights/spsr_perceptual_x4.safetensors \
        --name perceptual --upstream work/psnr --upstream work/nse --scores work/scores.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spsr.errors import SpsrError
from spsr.run_folder import MODEL_FILE, NSE_FILE


def run_record(run: Path) -> dict[str, Any]:
    """The provenance a run folder's exported weights carry (generator or NSE)."""
    from safetensors import safe_open

    for name in (MODEL_FILE, NSE_FILE):
        path = run / name
        if path.is_file():
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
            record = json.loads(meta.get("provenance", "{}") or "{}")
            record.setdefault("run", run.name)
            return record
    raise SpsrError(f"{run} holds no model.safetensors or nse.safetensors (is the run finished?)")


def model_scores(scores_json: Path, label: str) -> dict[str, dict[str, float]]:
    """``{dataset: {metric: mean}}`` for ``label`` and for bicubic, from ``spsr eval --json``."""
    data = json.loads(scores_json.read_text())
    out: dict[str, dict[str, float]] = {}
    for dataset, entry in data.get("datasets", {}).items():
        models = entry.get("models", {})
        if label not in models:
            raise SpsrError(f"{scores_json} has no scores of {label!r} on {dataset} (has {', '.join(models)})")
        out[dataset] = {k: round(float(v), 4) for k, v in models[label]["mean"].items()}
        if "Bicubic" in models:
            out[f"{dataset} bicubic"] = {k: round(float(v), 4) for k, v in models["Bicubic"]["mean"].items()}
    return out


def scores_protocol(scores_json: Path) -> str:
    """The protocol label the scores of an ``spsr eval --json`` file were made under; files written
    before ``spsr eval`` recorded one scored SSIM at full resolution, i.e. under ``basicsr``."""
    protocol = json.loads(scores_json.read_text()).get("protocol")
    return str(protocol["label"]) if isinstance(protocol, dict) and "label" in protocol else "basicsr"


def _stages_of(source: Path) -> list[dict[str, Any]]:
    """The stage records of an upstream: its own, or, for an already bundled model (e.g. the
    previous release's built-in file in a run folder), the stages recorded in it."""
    record = run_record(source)
    if "pipeline" in record and isinstance(record.get("stages"), list):
        return list(record["stages"])
    return [record]


def bundle(run: Path, output: Path, name: str, upstream: Sequence[Path], scores: Path | None,
           pipeline: str) -> dict[str, Any]:
    """Write ``run``'s generator to ``output`` with the pipeline's provenance; returns it."""
    from spsr.infer import load_model, save_weights

    loaded = load_model(run)
    main = run_record(run)
    stages = [stage for p in upstream for stage in _stages_of(p)] + [main]
    provenance: dict[str, Any] = {
        "name": name,
        "pipeline": pipeline,
        "command": " && ".join(c for s in stages for c in s.get("commands", [])),
        "stages": stages,
        "data": main.get("data", ""),
        "iterations": main.get("iteration", 0),
        "train_seconds": round(sum(float(s.get("train_seconds", 0.0)) for s in stages), 1),
        "device": main.get("device", ""),
        "torch": main.get("torch", ""),
    }
    if scores is not None:
        provenance["scores"] = model_scores(scores, run.name)
        provenance["scores_protocol"] = scores_protocol(scores)
    save_weights(output, loaded.model, loaded.spec, provenance=provenance)
    return provenance


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the finished run folder whose generator to bundle")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .safetensors to write")
    parser.add_argument("--name", required=True, help="the built-in name (e.g. psnr)")
    parser.add_argument("--upstream", type=Path, action="append", default=[],
                        help="a run this one was initialised from or used (repeatable, in order)")
    parser.add_argument("--scores", type=Path, help="spsr eval --json output with this run's scores")
    parser.add_argument("--pipeline", default="spsr/tools/train_default_models.sh",
                        help="the script that ran the stages")
    args = parser.parse_args(argv)
    try:
        prov = bundle(args.run, args.output, args.name, args.upstream, args.scores, args.pipeline)
    except (SpsrError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({prov['iterations']} iterations, {prov['train_seconds'] / 60:.0f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
