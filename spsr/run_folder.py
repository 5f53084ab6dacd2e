"""The files of a run folder: the one place that names them.

A run folder (``spsr train -o RUN``, ``spsr pretrain-psnr``, ``spsr pretrain-nse``, a row of
``spsr ablate``) holds::

    RUN/config.toml              the resolved configuration (what --resume reads)
    RUN/log.jsonl                one JSON record per line (start, train, val, checkpoint, ...)
    RUN/model.safetensors        the generator's exported weights (what --weights RUN reads)
    RUN/best.safetensors         the weights of the best validation PSNR
    RUN/nse.safetensors          a pretrain-nse run's structure extractor
    RUN/nse_head.safetensors     ... and the head it was trained with
    RUN/nse_eval.json            pretrain-nse --evaluate's scores
    RUN/eval.json                an ablation row's scores
    RUN/error.log                the traceback of an ablation row that failed
    RUN/log.failed.jsonl         the log of an attempt that never checkpointed, set aside
    RUN/state/last.pt            everything needed to resume exactly
    RUN/state/iter_00001000.pt   numbered states (run.keep_states)

Torch-free, so anything (the CLI's planning, the ablation planner) may use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.toml"
LOG_FILE = "log.jsonl"
FAILED_LOG_FILE = "log.failed.jsonl"
MODEL_FILE = "model.safetensors"
BEST_FILE = "best.safetensors"
NSE_FILE = "nse.safetensors"
NSE_HEAD_FILE = "nse_head.safetensors"
NSE_EVAL_FILE = "nse_eval.json"
EVAL_FILE = "eval.json"
ERROR_FILE = "error.log"
STATE_DIR = "state"
LAST_STATE = "last.pt"
#: Suffix of the temporary files of a save in progress (see :mod:`spsr.atomic`).
TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run folder's files (nothing is created or read).

    ``RunFolder("runs/g").model`` is ``runs/g/model.safetensors``; see the module docstring for
    what each file holds.
    """

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def log(self) -> Path:
        return self.path / LOG_FILE

    @property
    def failed_log(self) -> Path:
        return self.path / FAILED_LOG_FILE

    @property
    def model(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def best(self) -> Path:
        return self.path / BEST_FILE

    @property
    def nse(self) -> Path:
        return self.path / NSE_FILE

    @property
    def nse_head(self) -> Path:
        return self.path / NSE_HEAD_FILE

    @property
    def nse_eval(self) -> Path:
        return self.path / NSE_EVAL_FILE

    @property
    def eval(self) -> Path:
        return self.path / EVAL_FILE

    @property
    def error_log(self) -> Path:
        return self.path / ERROR_FILE

    @property
    def state_dir(self) -> Path:
        return self.path / STATE_DIR

    @property
    def last_state(self) -> Path:
        return self.state_dir / LAST_STATE

    def numbered_state(self, iteration: int) -> Path:
        """``RUN/state/iter_00001000.pt``."""
        return self.state_dir / f"iter_{iteration:08d}.pt"

    def numbered_states(self) -> list[Path]:
        """The numbered states present, oldest first."""
        return sorted(self.state_dir.glob("iter_*.pt"))

    def holds_checkpoint(self) -> bool:
        """Whether the folder holds anything worth keeping: a state to resume or exported weights."""
        return self.last_state.is_file() or self.model.exists() or bool(self.numbered_states())

    def temporary_files(self) -> list[Path]:
        """Temporary files of saves killed midway, in RUN and RUN/state (never a finished file)."""
        found: list[Path] = []
        for folder in (self.path, self.state_dir):
            if folder.is_dir():
                found += [p for p in folder.glob(f"*{TEMP_SUFFIX}") if p.is_file()]
        return found
