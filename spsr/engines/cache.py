"""The conversion cache: each model converted once per weights, spsr version and engine version.

Converted models live under ``<cache root>/engines/<engine>/<key>/`` (the cache root is the one
``spsr fetch`` uses: ``$SPSR_CACHE``, else ``$XDG_CACHE_HOME/spsr``, else ``~/.cache/spsr``).
The key is a SHA-256 over the weights as loaded (every tensor's name, shape, dtype and bytes),
the output kind (SR only, or SR and gradient branch), spsr's, PyTorch's and the engine's
versions, and the ONNX opset. A folder is built under a lock (another process converting the
same model waits and then reuses it) in a temporary folder renamed into place, and carries a
``manifest.json`` with each file's SHA-256: a folder whose files no longer match (a truncated
copy, a disk error) is removed and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

import spsr
from spsr.atomic import file_mode, folder_mode

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"


def cache_root() -> Path:
    """``<spsr cache>/engines`` (:func:`spsr.lite.warm.engines_cache`)."""
    from spsr.lite.warm import engines_cache

    return engines_cache()


def _plain_class(cls: type) -> str:
    """The network's own class name (the torch engine's fast subclasses count as their base)."""
    while cls.__module__.startswith("spsr.engines") and cls.__base__ is not None:
        cls = cls.__base__
    return f"{cls.__module__}.{cls.__qualname__}"


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model: each module's class and plain settings (``image_skip``, ``scale``...,
    which change the forward without a tensor of their own) and the names, shapes, dtypes and
    bytes of every tensor of its state dict."""
    h = hashlib.sha256()
    for name, module in model.named_modules():
        settings = sorted((k, repr(v)) for k, v in vars(module).items()
                          if not k.startswith("_") and k != "training"
                          and isinstance(v, (bool, int, float, str, tuple, type(None))))
        h.update(f"{name}:{_plain_class(type(module))}:{settings};".encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def conversion_key(digest: str, engine: str, engine_version: str, with_gradient: bool, opset: int) -> str:
    """The cache key of one conversion (hex, 32 characters)."""
    parts = [digest, spsr.__version__, torch.__version__, engine, engine_version,
             "sr+grad" if with_gradient else "sr", str(opset)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _intact(folder: Path) -> bool:
    """Whether ``folder`` has a manifest and every file it lists with its digest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        return bool(files) and all(_file_digest(folder / name) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached_conversion(
    engine: str, key: str, build: Callable[[Path], None], on_rebuild: Callable[[str], None] | None = None
) -> tuple[Path, bool]:
    """The folder holding the conversion ``key`` of ``engine``, built by ``build(folder)`` if needed.

    ``build`` writes the engine's files into the (temporary) folder it is given; they are listed
    with their digests in the manifest and the folder is renamed into place.

    Returns:
        ``(folder, built)``: ``built`` is True when this call converted the model.

    Raises:
        OSError: the cache folder cannot be created or written.
    """
    parent = cache_root() / engine
    parent.mkdir(parents=True, exist_ok=True, mode=folder_mode())
    folder = parent / key
    if folder.is_dir() and _intact(folder):
        return folder, False
    with _locked(parent / f"{key}.lock"):
        if folder.is_dir():
            if _intact(folder):
                return folder, False  # another process built it while this one waited
            if on_rebuild is not None:
                on_rebuild(f"the cached {engine} conversion {folder} is damaged: converting again")
            shutil.rmtree(folder, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=parent))
        try:
            build(tmp)
            files = {p.name: _file_digest(p) for p in sorted(tmp.iterdir()) if p.is_file()}
            manifest = {"spsr": spsr.__version__, "torch": torch.__version__, "engine": engine, "files": files}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            for p in tmp.iterdir():
                os.chmod(p, file_mode())
            os.chmod(tmp, folder_mode())
            os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return folder, True

