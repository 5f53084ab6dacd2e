"""The resumable training state: one file, written atomically, read without unpickling code.

``RUN/state/last.pt`` holds everything a run needs to continue exactly where it stopped::

    format, version, iteration
    config        the resolved configuration (a nested dict)
    networks      {name: state_dict}         every trainable network (G, D, D_grad, ...)
    optimizers    {name: state_dict}         Adam moments and step counts
    schedulers    {name: state_dict}
    scalers       {name: state_dict}         fp16 GradScalers (empty otherwise)
    ema           state_dict | None          the EMA copy of the generator
    stage         dict                       whatever the stage adds (extra_state)
    data          {epoch, position}          the data position
    rng           [per-rank RNG states]      python, numpy, torch CPU, CUDA
    engine        {best, nonfinite_streak, ...}

It is written with ``torch.save`` to a temporary file in the same folder and renamed over the
old one, so a crash or a second Ctrl-C never leaves a half-written state, and read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spsr.atomic import atomic_path
from spsr.errors import CheckpointError
from spsr.run_folder import RunFolder

STATE_FORMAT = "spsr-train-state"
STATE_VERSION = 1


def last_state_path(run_dir: str | os.PathLike[str]) -> Path:
    """``RUN/state/last.pt``."""
    return RunFolder(run_dir).last_state


def capture_rng(device: torch.device | None = None) -> dict[str, Any]:
    """This process's random number generator states (Python, NumPy, torch CPU and CUDA).

    Args:
        device: the process's device; on CUDA only its generator is captured (touching every
            GPU would create a CUDA context on each of them in every ``torchrun`` process).
    """
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.random.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if device is not None and device.type == "cuda" else [],
    }
    return state


def restore_rng(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore what :func:`capture_rng` captured (the CUDA generator of ``device``)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.random.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and device is not None and device.type == "cuda":
        # One entry: this device's (what capture_rng writes); several: one per GPU (older states).
        index = 0 if len(cuda) == 1 else (device.index or 0)
        if index < len(cuda):
            torch.cuda.set_rng_state(cuda[index], device)


def save_state(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a training state atomically (temporary file in the same folder, then rename).

    Args:
        path: destination (its folder is created).
        payload: the state dict; ``format``/``version`` are added.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **payload}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training state written by :func:`save_state`.

    Raises:
        CheckpointError: missing, unreadable, or not a training state of this version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training state to resume from: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt file is a user-facing problem
        raise CheckpointError(f"cannot read training state {path}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not an spsr training state")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(
            f"{path} is a training state of format version {state.get('version')}, "
            f"this spsr reads version {STATE_VERSION}"
        )
    return state


def prune_numbered_states(run_dir: str | os.PathLike[str], keep: int) -> None:
    """Delete all but the ``keep`` newest ``state/iter_*.pt`` files."""
    numbered = RunFolder(run_dir).numbered_states()
    for old in numbered[: max(0, len(numbered) - keep)]:
        old.unlink(missing_ok=True)
