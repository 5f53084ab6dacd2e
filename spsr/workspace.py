"""The working-folder convention: where commands read and write when no path is given.

A working folder (the current directory) holds::

    data/<source>_x<scale>.h5    patch stores (spsr prepare-data DIR writes data/<DIR name>_x4.h5)
    runs/psnr                    spsr pretrain-psnr's run (what spsr train starts from)
    runs/nse-contrastive         spsr pretrain-nse's run (runs/nse-jigsaw for --task jigsaw)
    runs/<variant>               spsr train --variant <variant>'s run (runs/g, runs/p, ...)
    datasets/<name>[/HR]         benchmarks spsr eval scores (Set5, Set14, BSD100, Urban100,
                                 Manga109); SPSR_DATASETS or --datasets DIR points elsewhere

The convention is used only where the user gave no path: every explicit option overrides it.
Nothing here trains, reads images or imports torch; the commands call these functions to fill
in their defaults, and raise :class:`~spsr.errors.ConfigError` (one line) where the folder does
not tell what to do (no store, several stores, a run already there, a missing NSE).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spsr.errors import ConfigError
from spsr.run_folder import RunFolder

DATA_DIR = "data"
RUNS_DIR = "runs"
DATASETS_DIR = "datasets"
#: Environment variable naming the benchmark folder (instead of ``./datasets``).
DATASETS_ENV = "SPSR_DATASETS"
#: The standard benchmarks ``spsr eval`` looks for, in the papers' table order.
BENCHMARKS = ("Set5", "Set14", "BSD100", "Urban100", "Manga109")
#: The run ``spsr train`` initialises its generator from (``spsr pretrain-psnr``'s default).
PSNR_RUN = "psnr"
#: The pretext task of the NSE each structure variant needs (TPAMI 2021 §4.2: F_P, F_J).
NSE_TASK_OF_VARIANT = {"p": "contrastive", "j": "jigsaw"}

_SCALE_IN_NAME = re.compile(r"_x(\d+)$")


def nse_run_name(task: str) -> str:
    """``runs/`` name of ``spsr pretrain-nse --task TASK``'s default run: ``nse-contrastive``."""
    return f"nse-{task}"


@dataclass(frozen=True)
class Benchmark:
    """A benchmark dataset found in the datasets folder: its name and its folder of HR images."""

    name: str
    hr_dir: Path


@dataclass(frozen=True)
class Workspace:
    """The conventional folders under ``root`` (default: the current directory).

    Attributes:
        root: the working folder; ``data/``, ``runs/`` and ``datasets/`` are inside it.
    """

    root: Path = Path()

    @classmethod
    def here(cls) -> Workspace:
        """The workspace of the current directory."""
        return cls(Path())

    @property
    def data_dir(self) -> Path:
        return self.root / DATA_DIR

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    def datasets_dir(self, given: str | os.PathLike[str] | None = None) -> Path:
        """``given`` (``--datasets``), else ``$SPSR_DATASETS``, else ``datasets/``."""
        if given is not None:
            return Path(given)
        env = os.environ.get(DATASETS_ENV, "").strip()
        return Path(env).expanduser() if env else self.root / DATASETS_DIR

    # ------------------------------------------------------------------ patch stores

    def store_path(self, sources: Sequence[str | os.PathLike[str]], scale: int) -> Path:
        """Where ``spsr prepare-data SOURCES`` writes without ``-o``: ``data/<name>_x<scale>.h5``,
        named after the first source (its folder name, or a file's stem)."""
        if not sources:
            raise ConfigError("give at least one SRC (folder, image, or text file listing images)")
        first = Path(sources[0]).expanduser()
        name = first.resolve().name if first.is_dir() else first.stem
        name = re.sub(r"[^\w.+-]+", "_", name).strip("._") or "data"
        return self.data_dir / f"{name}_x{scale}.h5"

    def stores(self) -> list[Path]:
        """The complete stores under ``data/`` (``*.h5``; a ``.partial`` one is not finished)."""
        if not self.data_dir.is_dir():
            return []
        return sorted(p for p in self.data_dir.glob("*.h5") if p.is_file())

    def default_store(self, scale: int | None, command: str = "spsr train") -> Path:
        """The one store under ``data/`` for ``scale`` (None: any scale).

        Raises:
            ConfigError: no store (says to run ``spsr prepare-data``), or several (lists them
                and the option to choose).
        """
        stores = self.stores()
        found = [p for p in stores if scale is None or _store_scale(p) in (scale, None)]
        at = f" for x{scale}" if scale is not None else ""
        if not found:
            others = "; ".join(f"{p} is x{_store_scale(p)}" for p in stores)
            hint = f" ({others}: give --scale to train at its scale)" if others else ""
            raise ConfigError(
                f"no patch store{at} in {self.data_dir}/{hint}: run `spsr prepare-data DIR` first "
                f"(writes {self.data_dir}/<DIR name>_x{scale or 4}.h5), or give the store as "
                f"`{command} STORE.h5`"
            )
        if len(found) > 1:
            names = ", ".join(shlex.quote(str(p)) for p in found)
            raise ConfigError(
                f"{len(found)} patch stores{at} in {self.data_dir}/ ({names}); choose one with "
                f"`{command} STORE.h5`"
            )
        return found[0]

    # ------------------------------------------------------------------ run folders

    def run_dir(self, name: str) -> Path:
        """``runs/<name>``."""
        return self.runs_dir / name

    def fresh_run_dir(self, name: str, command: str) -> Path:
        """``runs/<name>`` for a new run, never one that already holds a run.

        Args:
            name: the run's conventional name (``psnr``, ``g``, ``nse-contrastive``).
            command: the command line that trains it, for the message (``spsr train --variant g``).

        Raises:
            ConfigError: ``runs/<name>`` holds a run; says that ``--resume`` continues it and
                ``-o`` starts another.
        """
        path = self.run_dir(name)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path} exists and is not a folder; give the run folder with -o DIR")
        if path.is_dir() and RunFolder(path).holds_checkpoint():
            raise ConfigError(
                f"{path} already holds a run: `{command} --resume` continues it, "
                f"`{command} -o DIR` starts another"
            )
        return path

    def runs(self) -> list[str]:
        """Names of the run folders under ``runs/`` that hold exported weights."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if RunFolder(p).model.is_file())

    def init_run(self) -> Path | None:
        """``runs/psnr`` when it holds weights (what a GAN variant starts from), else None."""
        path = self.run_dir(PSNR_RUN)
        return path if RunFolder(path).model.is_file() else None

    def nse_run(self, variant: str) -> Path | None:
        """The NSE run variant ``p`` / ``j`` would use: ``runs/nse-contrastive`` /
        ``runs/nse-jigsaw`` when it holds an extractor; None for other variants or when absent.
        """
        task = NSE_TASK_OF_VARIANT.get(variant)
        if task is None:
            return None
        path = self.run_dir(nse_run_name(task))
        return path if RunFolder(path).nse.is_file() else None

    def named_run(self, name: str) -> Path | None:
        """``runs/<name>`` for a bare name (no folder part) when that folder exists, else None:
        what ``--weights g`` means where no file ``g`` exists."""
        if not name or Path(name).name != name or name in (".", ".."):
            return None
        path = self.run_dir(name)
        return path if path.is_dir() else None

    # ------------------------------------------------------------------ benchmarks

    def benchmarks(self, datasets_dir: str | os.PathLike[str] | None = None) -> list[Benchmark]:
        """The standard benchmarks found, in :data:`BENCHMARKS` order: ``<dir>/<name>/HR`` or
        ``<dir>/<name>`` holding images (the name's case does not matter)."""
        folder = self.datasets_dir(datasets_dir)
        if not folder.is_dir():
            return []
        by_lower = {p.name.lower(): p for p in sorted(folder.iterdir()) if p.is_dir()}
        found: list[Benchmark] = []
        for name in BENCHMARKS:
            base = by_lower.get(name.lower())
            if base is None:
                continue
            hr = next((p for p in sorted(base.iterdir()) if p.is_dir() and p.name.lower() == "hr"),
                      None)
            for candidate in (hr, base):
                if candidate is not None and _holds_images(candidate):
                    found.append(Benchmark(name, candidate))
                    break
        return found

    def default_benchmarks(self, datasets_dir: str | os.PathLike[str] | None = None
                           ) -> list[Benchmark]:
        """:meth:`benchmarks`, or a :class:`ConfigError` saying where it looked when none."""
        found = self.benchmarks(datasets_dir)
        if not found:
            folder = self.datasets_dir(datasets_dir)
            raise ConfigError(
                f"no benchmark found in {folder}/ (looked for {', '.join(BENCHMARKS)}, each as "
                f"<name>/HR or <name>); give HR folders as `spsr eval DIR`, or point "
                f"{DATASETS_ENV} or --datasets at them"
            )
        return found


@dataclass
class TrainingDefaults:
    """What the working folder supplies to a training command (see :func:`training_defaults`).

    Attributes:
        output: the run folder (the given ``-o``, else ``runs/<name>``).
        data: the store found under ``data/`` (None: given, or not needed on resume).
        init: ``runs/psnr`` to start the generator from (None: given, not wanted, or absent).
        nse: ``runs/nse-<task>`` for variants ``p`` / ``j`` (None: given or not needed).
        notes: lines to print, each saying what default was taken.
        warnings: lines to print as warnings (e.g. a GAN started from random weights).
    """

    output: Path
    data: Path | None = None
    init: Path | None = None
    nse: Path | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def training_defaults(
    workspace: Workspace,
    *,
    name: str,
    command: str,
    output: Path | None,
    resume: bool,
    given: frozenset[str] | set[str] = frozenset(),
    scale: int | None = None,
    variant: str | None = None,
    wants_init: bool = False,
) -> TrainingDefaults:
    """Fill in a training command's paths from the working folder; explicit ones win.

    Args:
        workspace: the working folder.
        name: the run's name under ``runs/`` (``psnr``, ``g``, ``nse-contrastive``).
        command: the command line that trains it, for messages (``spsr train --variant g``).
        output: ``-o`` (None: ``runs/<name>``, which must not hold a run unless ``resume``).
        resume: continuing a run (no store, init or NSE is looked for).
        given: the dotted configuration keys set explicitly (flags, ``--set``, ``--config``):
            ``data.path``, ``run.init`` and ``structure.nse`` there are left alone.
        scale: the scale whose store is looked for (None: any).
        variant: the variant trained (``p`` / ``j`` look for their NSE run).
        wants_init: a variant the papers start from a PSNR-oriented model (``spsr train``'s).

    Raises:
        ConfigError: ``runs/<name>`` already holds a run, no or several stores, a missing NSE.
    """
    out = TrainingDefaults(output if output is not None else workspace.run_dir(name))
    if output is None:
        if not resume:
            workspace.fresh_run_dir(name, command)
        out.notes.append(f"run folder: {out.output} (-o overrides)")
    if resume:
        return out
    if "data.path" not in given:
        out.data = workspace.default_store(scale, command)
        out.notes.append(f"data: {out.data} (give STORE.h5 to choose another)")
    if wants_init and "run.init" not in given:
        out.init = workspace.init_run()
        if out.init is not None:
            out.notes.append(f"initialising the generator from {out.init} (the PSNR-oriented "
                             "pre-training, as the papers start; --init overrides)")
        else:
            out.warnings.append(
                f"starting from random weights: no --init and no {workspace.run_dir(PSNR_RUN)}; "
                "the papers start GAN training from a PSNR-oriented model: run `spsr "
                "pretrain-psnr` first (writes runs/psnr) or give --init RUN"
            )
    task = NSE_TASK_OF_VARIANT.get(variant or "")
    if task is not None and "structure.nse" not in given:
        out.nse = workspace.nse_run(variant or "")
        if out.nse is None:
            raise ConfigError(
                f"variant {variant} needs a structure extractor trained by {task}: run `spsr "
                f"pretrain-nse --task {task}` first (writes "
                f"{workspace.run_dir(nse_run_name(task))}), or give --nse RUN"
            )
        out.notes.append(f"structure extractor: {out.nse} (--nse overrides)")
    return out


def _store_scale(path: Path) -> int | None:
    """The store's scale from its attributes, else from its name (``_x4``), else None."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return int(f.attrs["scale"])
    except (OSError, KeyError, ValueError, TypeError):
        match = _SCALE_IN_NAME.search(path.stem)
        return int(match.group(1)) if match else None


def _holds_images(folder: Path) -> bool:
    from spsr.data.image_io import is_image_file

    return any(p.is_file() and is_image_file(p) for p in folder.iterdir())
