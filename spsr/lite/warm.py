"""The warm start of ``spsr upscale``: a converted model run without loading PyTorch.

A full run (PyTorch loads the weights; the engine converts the model or finds its conversion in
the cache, :mod:`spsr.engines.cache`) that ran OpenVINO or ONNX Runtime records what it ran in a
small JSON file, ``<spsr cache>/engines/warm/<key>.json``. The key is a SHA-256 over what the
user asked for (the ``--weights`` text and the file or folder it names, ``--engine``,
``--precision``, the tile, overlap and batch, ``--model-scale``), the machine (CPU model, the ISA
flags that pick kernels, the variables that cap them, the CPUs this process may use) and spsr's
version. A later run with the same request reads the file and, when every check passes, runs the
converted file with :mod:`spsr.lite.runners` on NumPy arrays, never importing PyTorch:

* the weights file has the size, modification time and inode it had (a retrained run folder,
  a replaced file: the full path runs and records again);
* each converted file has the size and modification time it had when the full run had checked
  its SHA-256 (a truncated or rewritten conversion goes back to the full path, which checks the
  digests and rebuilds);
* the engine's installed version is the one that ran;
* no GPU can be present (no NVIDIA or ROCm device node) unless ``--device cpu`` was given.

A full run that ends up on PyTorch (``auto`` measured it fastest, an engine fell back) removes
the record, so the warm start never runs an engine the full path would not. ``--engine-retune``
always takes the full path.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import spsr
from spsr import cpu

#: Version of the record's layout.
FORMAT = 1
#: Device nodes whose presence means PyTorch could see a GPU (NVIDIA, ROCm, WSL's GPU).
GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/kfd", "/dev/dxg")
#: Largest record read (a record is well under 4 KiB).
MAX_RECORD_BYTES = 1 << 16


def engines_cache() -> Path:
    """``<spsr cache>/engines``: converted models, OpenVINO's compiled blobs, ``auto``'s choices
    and the warm-start records."""
    from spsr.weights.catalog import spsr_cache_dir

    return spsr_cache_dir() / "engines"


def openvino_blobs() -> Path:
    """OpenVINO's compiled-model cache (``CACHE_DIR``)."""
    return engines_cache() / "openvino-blobs"


def onnxruntime_optimized() -> Path:
    """ONNX Runtime's optimized graphs of the converted models, one per model, version and CPU."""
    return engines_cache() / "onnxruntime-optimized"


def gpu_possible() -> bool:
    """Whether this machine has a GPU device node (so only PyTorch can tell where ``auto`` runs)."""
    return any(os.path.exists(p) for p in GPU_NODES)


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def stat_of(path: Path) -> list[int]:
    """``[size, mtime_ns, inode]`` of a file (what tells a replaced or rewritten file)."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


@dataclass(frozen=True)
class WarmRequest:
    """What a ``spsr upscale`` run asked for, as far as it decides the model and the engine."""

    weights: str
    engine: str
    precision: str
    tile: int
    overlap: int
    batch: int | None
    model_scale: int | None
    device: str

    def key(self) -> str:
        """The record's key (hex, 32 characters); see the module docstring."""
        named = Path(self.weights)
        where: dict[str, str | None]
        try:
            where = {"path": os.path.realpath(named)} if named.exists() else {"cwd": os.getcwd()}
        except OSError:  # a working folder that was removed: no record can match
            where = {"cwd": None}
        parts = {"request": asdict(self), "where": where, "spsr": spsr.__version__,
                 "machine": {"cpu": cpu.cpu_model_name(), "flags": list(cpu.kernel_flags()),
                             "env": cpu.kernel_env(), "cpus": usable_cpus()}}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]

    def path(self) -> Path:
        """``<spsr cache>/engines/warm/<key>.json``."""
        return engines_cache() / "warm" / f"{self.key()}.json"

    def may_start_warm(self) -> str | None:
        """None when the request can run warm at all; else why not, in a few words."""
        if self.engine not in ("auto", "openvino", "onnxruntime"):
            return f"--engine {self.engine}"
        if self.device not in ("auto", "cpu"):
            return f"--device {self.device}"
        if self.device == "auto" and gpu_possible():
            return "a GPU may be present (only PyTorch can tell)"
        return None


@dataclass
class WarmRecord:
    """What a full run ran: enough to run it again without PyTorch, and to tell it is unchanged.

    Attributes:
        engine: ``openvino`` or ``onnxruntime``.
        engine_version: the engine's version that ran.
        precision: ``fp32`` or ``bf16``.
        threads: the engine's threads.
        scale: the model's factor.
        model: the model as ``spsr upscale`` describes it.
        weights_file: the weights file that was loaded, and its :func:`stat_of`.
        converted: the converted file the engine ran (``model.xml`` / ``model.onnx``).
        files: each file of the conversion and its size and mtime.
        spsr: spsr's version.
    """

    engine: str
    engine_version: str
    precision: str
    threads: int
    scale: int
    model: str
    weights_file: str
    weights_stat: list[int]
    converted: str
    files: dict[str, list[int]] = field(default_factory=dict)
    spsr: str = spsr.__version__
    format: int = FORMAT

    @classmethod
    def of_conversion(cls, *, engine: str, engine_version: str, precision: str, threads: int, scale: int,
                      model: str, weights_file: Path, converted: Path) -> WarmRecord:
        """A record of a conversion folder as it is now (the caller has just checked its digests)."""
        files = {str(p): stat_of(p)[:2] for p in sorted(converted.parent.iterdir())
                 if p.is_file() and not p.name.endswith(".lock")}
        return cls(engine, engine_version, precision, threads, scale, model, str(weights_file),
                   stat_of(weights_file), str(converted), files)

    def unchanged(self) -> str | None:
        """None when the weights and the conversion are as recorded; else what changed."""
        try:
            if stat_of(Path(self.weights_file)) != self.weights_stat:
                return f"{self.weights_file} changed"
            for name, st in self.files.items():
                if stat_of(Path(name))[:2] != st:
                    return f"{name} changed"
        except OSError as exc:
            return f"{exc.filename or 'a file'}: {exc.strerror or exc}"
        return None


def remember(request: WarmRequest, record: WarmRecord | None) -> Path | None:
    """Write ``record`` for ``request`` atomically (None: remove the request's record, as after a
    run on PyTorch). Returns the record's path, or None where none is kept or it cannot be written
    (the cache is an optimisation: a read-only cache only costs later runs their warm start)."""
    from spsr.atomic import write_text_atomic
    from spsr.errors import SpsrError

    path = request.path()
    try:
        if record is None:
            path.unlink(missing_ok=True)
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(asdict(record), indent=1, sort_keys=True))
    except (OSError, SpsrError):
        return None
    return path


def _parse(text: str) -> WarmRecord:
    data: Any = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("not a warm-start record of this version")
    record = WarmRecord(**data)
    if record.engine not in ("openvino", "onnxruntime") or record.precision not in ("fp32", "bf16"):
        raise ValueError("unknown engine or precision")
    if not isinstance(record.scale, int) or not 1 <= record.scale <= 8 or not isinstance(record.threads, int):
        raise ValueError("bad scale or threads")
    return record


def lookup(request: WarmRequest) -> tuple[WarmRecord | None, str]:
    """The request's record when the warm start may use it, else None; and why, in a few words."""
    reason = request.may_start_warm()
    if reason is not None:
        return None, reason
    path = request.path()
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_RECORD_BYTES + 1)
    except FileNotFoundError:
        return None, "no record of an earlier run"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    try:
        if len(raw) > MAX_RECORD_BYTES:
            raise ValueError("too large")
        record = _parse(raw.decode("utf-8"))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        return None, f"unreadable record {path} ({exc})"
    if record.spsr != spsr.__version__:
        return None, "recorded by another spsr version"
    changed = record.unchanged()
    if changed is not None:
        return None, changed
    return record, "recorded by an earlier run"
