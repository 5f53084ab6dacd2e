"""The file formats of the NSE: ``nse.safetensors`` (the extractor) and ``nse_head.safetensors``.

``nse.safetensors`` holds the extractor F's tensors with metadata ``format = "spsr-nse"``, the
constructor arguments (``config``, JSON) and what the ``nse`` stage adds (``task``, ``sampling``,
``iteration``, ``tau``, ``crop``, ``provenance``); it is what ``spsr train --variant p|j --nse``
reads (TPAMI 2021 §4.3). ``nse_head.safetensors`` holds the head of the pretext task it was
trained by (the predictor P or the jigsaw classifier J), with the same metadata and ``hidden``,
so the evaluation can start its re-fit from it (TPAMI 2021 §5.2). Both are written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spsr import untrusted
from spsr.atomic import atomic_path
from spsr.errors import CheckpointError
from spsr.nse.extractor import NeuralStructureExtractor
from spsr.nse.tasks import TaskHead, new_head
from spsr.run_folder import NSE_FILE, NSE_HEAD_FILE

NSE_FORMAT = "spsr-nse"


def save_nse(
    path: str | os.PathLike[str],
    nse: NeuralStructureExtractor,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write an NSE as ``.safetensors`` with its constructor arguments, atomically.

    Args:
        path: destination file.
        nse: the extractor.
        metadata: more string entries (task, sampling, iterations...).

    Returns:
        The written path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"format": NSE_FORMAT, "config": json.dumps(nse.config()), **(metadata or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in nse.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def nse_metadata(source: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of an NSE file or run folder (task, sampling, ...)."""
    from safetensors import safe_open

    path = _nse_path(source)
    with safe_open(str(path), "pt") as f:
        return dict(f.metadata() or {})


def load_nse(source: str | os.PathLike[str]) -> NeuralStructureExtractor:
    """Read an NSE written by :func:`save_nse` (a file, or a ``pretrain-nse`` run folder).

    Raises:
        CheckpointError: missing, unreadable, or not an NSE file.
    """
    from safetensors import SafetensorError, safe_open

    path = _nse_path(source)
    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not iterable
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({exc})") from None
    if meta.get("format") != NSE_FORMAT:
        raise CheckpointError(f"{path} is not a neural structure extractor written by spsr")
    try:
        nse = NeuralStructureExtractor(**untrusted.loads(meta["config"], "metadata 'config'"))
        nse.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: broken neural structure extractor ({exc})") from None
    return nse


def _nse_path(source: str | os.PathLike[str]) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / NSE_FILE
    if not path.is_file():
        raise CheckpointError(
            f"no neural structure extractor at {path}: train one with spsr pretrain-nse"
        )
    return path


def save_head(path: str | os.PathLike[str], head: TaskHead, metadata: dict[str, str]) -> Path:
    """Write a task's head as ``.safetensors`` with ``metadata`` (``task``, ``sampling``,
    ``hidden``...), atomically; :func:`load_head` reads it back."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def load_head(run_dir: str | Path, channels: int) -> TaskHead | None:
    """The trained head of a ``pretrain-nse`` run (None when the run has none)."""
    from safetensors import safe_open

    path = Path(run_dir) / NSE_HEAD_FILE
    if not Path(run_dir).is_dir() or not path.is_file():
        return None
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata() or {})
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not iterable
    hidden = int(meta.get("hidden", "256"))
    task = "contrastive" if meta.get("task") == "contrastive" else "jigsaw"
    head = new_head(task, channels, sampling=meta.get("sampling", "horizontal"), hidden=hidden)
    head.load_state_dict(state)
    return head
