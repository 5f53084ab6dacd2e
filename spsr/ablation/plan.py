"""From a grid to a plan: each configuration's resolved training configuration, its run folder, and
what has to happen to it (train, resume, reuse, or why it cannot run).

A configuration is resolved by :func:`spsr.train.resolve.resolve_run` in layers, the last one
winning:

1. the variant's preset (:func:`spsr.train.variants.preset`), then its ``arch`` / ``backbone``;
2. the grid's common overrides, then the command line's (``--set``, ``--batch-size``...);
3. the configuration's own overrides (what it ablates);
4. what the ablation fixes for every row: ``data.path``, ``run.iterations``, ``run.init`` and the
   structure extractor (``--nse``).

Nothing here trains or writes: :func:`plan_grid` only reads run folders, so ``--dry-run`` shows
exactly what a real run would do.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from spsr import untrusted
from spsr.ablation.grid import DEFAULT_SLOT, AblationConfig, AblationGrid
from spsr.ablation.states import CONFLICT, EVALUATE, RESUME, REUSE, TRAIN, UNAVAILABLE
from spsr.errors import ConfigError, SpsrError
from spsr.run_folder import RunFolder
from spsr.train.config import TrainConfig, load_toml
from spsr.train.resolve import RESUME_OVERRIDABLE, RunLayers, changed_keys, flat_config, resolve_run
from spsr.train.variants import variants

RUNS_DIR = "runs"
#: The configuration key through which the engine's structure-loss variants take the NSE run.
NSE_KEY = "structure.nse"


@dataclass
class AblationInputs:
    """What every configuration of a grid shares.

    Attributes:
        data: the HDF5 patch store (``spsr prepare-data``); None only for a dry run.
        iterations: the training budget of every configuration; None: the presets' own.
        inits: ``--init`` weights by slot name (``default`` for a plain ``--init PATH``).
        nses: ``--nse`` runs by slot name.
        overrides: dotted configuration keys from the command line, applied to every row.
    """

    data: str | None = None
    iterations: int | None = None
    inits: Mapping[str, str] = field(default_factory=dict)
    nses: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class PlannedRun:
    """One configuration of the plan.

    Attributes:
        config: the grid's row.
        run_dir: its run folder (``OUT/runs/<folder>``).
        action: ``train`` | ``resume`` | ``evaluate`` | ``reuse`` (nothing to do) |
            ``unavailable`` (the engine or the inputs cannot run it) | ``conflict`` (the folder
            holds another configuration).
        problem: why it is unavailable or conflicting (one line).
        train_config: the resolved training configuration (None for ``train = false`` rows and
            for unavailable ones).
        eval_source: the weights it is evaluated with (the run folder's, or the init's).
        done_iterations: iterations already trained in the run folder.
    """

    config: AblationConfig
    run_dir: Path
    action: str
    problem: str = ""
    train_config: TrainConfig | None = None
    eval_source: str | None = None
    done_iterations: int = 0

    @property
    def runnable(self) -> bool:
        return self.action not in (UNAVAILABLE, CONFLICT)

    @property
    def iterations(self) -> int:
        return self.train_config.run.iterations if self.train_config is not None else 0

    def overrides_text(self) -> str:
        """``arch=rrdb, loss.branch=0.0`` (what the row changes on its variant)."""
        c = self.config
        parts = [f"arch={c.arch}"] if c.arch else []
        parts += [f"backbone={c.backbone}"] if c.backbone else []
        parts += [f"{k}={v}" for k, v in c.overrides.items()]
        if c.nse is not None:
            parts.append(f"nse={c.nse}")
        if c.init != DEFAULT_SLOT:
            parts.append(f"init={c.init}")
        if not c.train:
            parts.append("not trained")
        return ", ".join(parts) or "(preset)"


def resolve_row(config: AblationConfig, grid: AblationGrid, inputs: AblationInputs) -> TrainConfig:
    """The training configuration of one row (see the module docstring for the layers).

    Raises:
        ConfigError: unknown variant, key or value; an NSE or init slot that was not given.
    """
    known = variants()
    if config.variant not in known:
        raise ConfigError(
            f"variant {config.variant} is not available in this version of the engine"
        )
    fixed: dict[str, Any] = {"data.path": inputs.data or None, "run.iterations": inputs.iterations}
    init = _slot(inputs.inits, config.init, "--init", "weights to start from")
    if init is not None:
        fixed["run.init"] = init
    if config.nse is not None:
        fixed[NSE_KEY] = _slot(
            inputs.nses, config.nse, "--nse", "a run of spsr pretrain-nse", required=True
        )
    layers = RunLayers(
        variant=config.variant, arch=config.arch, backbone=config.backbone,
        overrides=[grid.overrides, inputs.overrides, config.overrides, fixed], adopt_init="size",
    )
    return resolve_run(layers)


@overload
def _slot(
    slots: Mapping[str, str], name: str, option: str, what: str, required: Literal[True]
) -> str: ...


@overload
def _slot(
    slots: Mapping[str, str], name: str, option: str, what: str, required: bool = False
) -> str | None: ...


def _slot(
    slots: Mapping[str, str], name: str, option: str, what: str, required: bool = False
) -> str | None:
    if name in slots:
        return slots[name]
    if name == DEFAULT_SLOT and not required:
        return None
    given = f"{option} RUN" if name == DEFAULT_SLOT else f"{option} {name}=RUN"
    raise ConfigError(f"needs {given} ({what})")


def plan_grid(
    grid: AblationGrid,
    out: str | os.PathLike[str],
    inputs: AblationInputs,
    eval_key: str | None = None,
) -> list[PlannedRun]:
    """Resolve every row and look at its run folder.

    Args:
        grid: the configurations.
        out: the ablation's output folder (run folders go under ``out/runs``).
        inputs: data, budget, inits, NSEs and common overrides.
        eval_key: the evaluation's fingerprint (:func:`spsr.ablation.scoring.eval_key`): a run
            whose stored scores have another key is planned as ``evaluate`` rather than ``reuse``.

    Returns:
        One :class:`PlannedRun` per row, in grid order.
    """
    runs_dir = Path(out) / RUNS_DIR
    plan = []
    for config in grid.configs:
        run_dir = runs_dir / config.folder
        if not config.train:
            plan.append(_plan_reference(config, run_dir, inputs, eval_key))
            continue
        try:
            cfg = resolve_row(config, grid, inputs)
        except SpsrError as exc:
            plan.append(PlannedRun(config, run_dir, UNAVAILABLE, problem=str(exc)))
            continue
        plan.append(_plan_training(config, run_dir, cfg, eval_key))
    _check_scales(plan)
    return plan


def _plan_reference(
    config: AblationConfig, run_dir: Path, inputs: AblationInputs, eval_key: str | None
) -> PlannedRun:
    try:
        source = _slot(
            inputs.inits, config.init, "--init", "the weights to evaluate", required=True
        )
    except ConfigError as exc:
        return PlannedRun(config, run_dir, UNAVAILABLE, problem=str(exc))
    action = REUSE if _eval_current(run_dir, eval_key, source) else EVALUATE
    return PlannedRun(config, run_dir, action, eval_source=source)


def _plan_training(
    config: AblationConfig, run_dir: Path, cfg: TrainConfig, eval_key: str | None
) -> PlannedRun:
    planned = PlannedRun(config, run_dir, TRAIN, train_config=cfg, eval_source=str(run_dir))
    folder = RunFolder(run_dir)
    if not folder.config.is_file():
        problem = start_problem(cfg)
        if problem is not None:  # it could not start: found now, not after the rows before it
            planned.action, planned.problem = UNAVAILABLE, problem
            return planned
        if folder.holds_checkpoint():
            planned.action = CONFLICT  # saved by a run whose folder was emptied under it
            planned.problem = (f"{run_dir} holds a checkpoint but no config.toml; "
                               "remove the folder or choose another -o")
        return planned
    difference = config_difference(run_dir, cfg)
    if difference:
        planned.action, planned.problem = CONFLICT, difference
        return planned
    done = trained_iterations(run_dir)
    has_state = folder.last_state.is_file()
    planned.done_iterations = done
    target = cfg.run.iterations
    if done > target:
        planned.action = CONFLICT
        planned.problem = (
            f"{run_dir} was trained for {done} iterations, more than the {target} "
            "asked for; remove it or choose another -o"
        )
    elif done == target and folder.model.is_file():
        planned.action = REUSE if _eval_current(run_dir, eval_key, str(run_dir)) else EVALUATE
    elif has_state:
        planned.action = RESUME
    return planned


def start_problem(cfg: TrainConfig) -> str | None:
    """Why a fresh row could not start, in one line (None: it can), checked as the engine would
    start it: the training data opens as a patch store of the row's scale, and the generator the
    row builds loads its ``run.init`` (so an init that cannot initialise it, e.g. an EDSR for an
    SRResNet row, is found by a dry run rather than after the rows before it have trained).
    Weights files of the losses (VGG19, LPIPS) are checked by
    :func:`spsr.ablation.study.missing_weights`."""
    if cfg.data.path:
        from spsr.data.store import PatchStore

        try:
            with PatchStore(cfg.data.path) as store:
                scale = store.scale
        except (SpsrError, OSError) as exc:
            return f"data: {exc}"
        if scale != cfg.model.scale:
            return f"data: {cfg.data.path} is a x{scale} store, the row's generator is x{cfg.model.scale}"
    if cfg.run.init:
        try:
            spec = cfg.model.spec()
            stamp = os.stat(cfg.run.init).st_mtime_ns if os.path.isfile(cfg.run.init) else 0
        except (SpsrError, OSError) as exc:
            return f"init: {exc}"
        return _init_problem(spec.to_json(), cfg.run.init, stamp)
    return None


@functools.lru_cache(maxsize=32)
def _init_problem(spec_json: str, init: str, stamp: int) -> str | None:
    """Whether the generator ``spec_json`` loads ``init`` (cached: a grid's rows share their
    inits, and a study plans its grid twice; ``stamp`` is the file's mtime, so a changed file is
    checked again)."""
    from spsr.archs.spec import ArchSpec, build_model
    from spsr.train.init_from import load_init

    try:
        spec = ArchSpec.from_dict(json.loads(spec_json))
        load_init(build_model(spec), spec, init)
    except (SpsrError, OSError, ValueError) as exc:
        return f"init: {exc}"
    return None


def _check_scales(plan: list[PlannedRun]) -> None:
    scales = [p.train_config.model.scale for p in plan if p.train_config is not None and p.runnable]
    if scales and any(s != scales[0] for s in scales):
        raise ConfigError(
            f"the configurations do not share one scale ({sorted(set(scales))}); "
            "an ablation table compares models of one scale"
        )


def grid_scale(plan: list[PlannedRun], default: int = 4) -> int:
    """The scale the grid's models upscale by (that of its trained rows)."""
    for p in plan:
        if p.train_config is not None:
            return p.train_config.model.scale
    return default


def config_difference(run_dir: Path, cfg: TrainConfig) -> str:
    """Why the run folder's stored configuration is not ``cfg`` ("" when it is, apart from the
    keys that may change on resume)."""
    try:
        where = RunFolder(run_dir).config
        stored = TrainConfig.from_dict(load_toml(where))
    except SpsrError as exc:
        return f"{where} cannot be read ({exc}); remove the folder or choose another -o"
    changed = changed_keys(stored, cfg, RESUME_OVERRIDABLE)  # run.iterations: checked apart
    if not changed:
        return ""
    key = changed[0]
    before, after = flat_config(stored).get(key), flat_config(cfg).get(key)
    return (
        f"{run_dir} holds another configuration ({key} is {before!r}, the plan "
        f"says {after!r}); remove it or choose another -o"
    )


def trained_iterations(run_dir: Path) -> int:
    """Iterations saved in the run folder's last checkpoint (0 when none), from its log.

    The engine logs a checkpoint after writing both the state and ``model.safetensors``, and
    always checkpoints at the last iteration, so this equals ``run.iterations`` exactly when the
    training finished."""
    last = 0
    for record in _log_records(run_dir):
        if record.get("kind") == "checkpoint":
            last = int(record.get("iteration", last))
    return last


def _log_records(run_dir: Path) -> list[dict[str, Any]]:
    try:
        lines = RunFolder(run_dir).log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(untrusted.loads(line, "log line"))
        except ValueError:
            continue  # a line cut short by a crash
    return records


def _eval_current(run_dir: Path, eval_key: str | None, source: str) -> bool:
    if eval_key is None:
        return False
    from spsr.ablation.scoring import stored_scores_current

    return stored_scores_current(RunFolder(run_dir).eval, eval_key, source)
