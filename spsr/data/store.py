"""The HDF5 patch store: its schema, the writer behind ``spsr prepare-data``, the reader, the info.

Layout (format version 1; ``N`` patches, ``P`` HR patch, ``p = P/s`` LR patch, ``M`` sources):

```
/hr              (N, P, P, 3) uint8   chunks (1, P, P, 3)   HR patches
/lr              (N, p, p, 3) uint8   chunks (1, p, p, 3)   LR patches (bicubic of the whole HR)
/source          (N,)         int32                        row of /sources each patch was cut from
/coords          (N, 2)       int32                        HR (y, x) of the patch's top-left corner
/sources/path    (M,)         str                          absolute path of each image used
/sources/sha256  (M,)         S64                          content hash of the file
/sources/size    (M, 2)       int32                        mod-cropped HR (height, width)
/val/NNNNN/hr    (H, W, 3)    uint8                        whole held-out images (attr ``source``)
/val/NNNNN/lr    (H/s, W/s, 3) uint8
attrs: format, format_version, complete, scale, patch, lr_patch, step, threshold, compression,
       degradation, creation_args (JSON), spsr_version, num_patches, num_images, num_val,
       skipped (JSON [{path, reason}]), notes (JSON {note: [paths]})
```

The writer works on ``OUT.partial`` and renames it at the end, so a store under its final name is
always complete: ``complete`` is set in a second, small write only after all the data was written,
flushed and synced, and the rename follows. HDF5 cannot recover from a failed write (after ENOSPC
it fails every later call, prints errors while freeing its objects and may crash the process at
exit), so the writer gives it a file object that records the first failed write and drops every
later one; the writer checks it after each image, stops, and removes the damaged partial file.
Progress is recorded after every image, so re-running the same command resumes an
interrupted run (or restarts it when the partial file is unusable or was made with other options);
either way the finished store holds the same content. Images are decoded and degraded in a process
pool; only the main process writes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

import h5py
import numpy as np

import spsr
from spsr.atomic import check_writable, fsync_folder, publish
from spsr.data.image_io import read_image
from spsr.errors import ConfigError, DataStoreError, ImageReadError, WriteError
from spsr.ops import bicubic_degrade
from spsr.processes import die_with_parent

FORMAT_NAME = "spsr-patch-store"
FORMAT_VERSION = 1
DEGRADATION = (
    "hr mod-cropped to the scale; lr = MATLAB imresize bicubic (antialiased) of the whole hr, "
    "uint8 rounded per axis"
)
COMPRESSIONS = ("none", "lzf", "gzip")
SCALES = (2, 3, 4)
#: Default HR patch: 480×480 sub-images (a multiple of every scale), as the official preprocessing.
DEFAULT_PATCH = 480

# ----------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class StoreOptions:
    """What a store is made of. Use ``StoreOptions.make`` to fill defaults and validate.

    Attributes:
        scale: downscaling factor (2, 3 or 4).
        patch: HR patch size (a multiple of ``scale``).
        step: sliding-window stride in HR pixels (a multiple of ``scale``).
        threshold: a last window flush with the right/bottom border is added when the pixels left
            over after the regular windows exceed this.
        compression: HDF5 filter for patches and val images: ``none``, ``lzf`` or ``gzip``.
        val: number of whole images held out as the ``val`` group (evenly spaced in sorted order).
        limit: use only the first ``limit`` images (sorted), or all when None.
    """

    scale: int
    patch: int
    step: int
    threshold: int
    compression: str = "none"
    val: int = 0
    limit: int | None = None

    @classmethod
    def make(
        cls,
        scale: int = 4,
        patch: int | None = None,
        step: int | None = None,
        threshold: int | None = None,
        compression: str = "none",
        val: int = 0,
        limit: int | None = None,
    ) -> StoreOptions:
        """Fill defaults (patch 480, step ``patch/2``, threshold ``patch/10``); validate.

        The defaults cut 480×480 HR sub-images every 240 pixels with a 48-pixel threshold, as the
        official SPSR (and BasicSR) preprocessing does; training then crops the papers' 32×32 LR
        at random positions inside them (``data.lr_patch``), instead of on a fixed grid.

        Raises:
            ConfigError: an invalid value or combination, with the option names in the message.
        """
        if scale not in SCALES:
            raise ConfigError(f"--scale {scale} is not supported; use 2, 3 or 4")
        patch = DEFAULT_PATCH if patch is None else patch
        if patch % scale:
            raise ConfigError(
                f"--patch {patch} is not a multiple of --scale {scale}, "
                "so the LR patch would not be whole pixels"
            )
        if patch // scale < 4:
            raise ConfigError(
                f"--patch {patch} is too small for --scale {scale}: "
                "the LR patch must be at least 4 pixels"
            )
        step = max(scale, (patch // 2) // scale * scale) if step is None else step
        if step < 1 or step % scale:
            raise ConfigError(
                f"--step {step} must be a positive multiple of --scale {scale} "
                "to keep LR and HR aligned"
            )
        threshold = patch // 10 if threshold is None else threshold
        if threshold < 0:
            raise ConfigError(f"--threshold {threshold} must be 0 or more")
        if compression not in COMPRESSIONS:
            raise ConfigError(
                f"--compression {compression!r} is not one of {', '.join(COMPRESSIONS)}"
            )
        if val < 0:
            raise ConfigError(f"--val {val} must be 0 or more")
        if limit is not None and limit < 1:
            raise ConfigError(f"--limit {limit} must be 1 or more")
        return cls(scale, patch, step, threshold, compression, val, limit)

    @property
    def lr_patch(self) -> int:
        return self.patch // self.scale

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------- geometry


def window_starts(length: int, patch: int, step: int, threshold: int) -> list[int]:
    """Start offsets of the sliding windows along one axis.

    Windows start at ``0, step, 2*step, ...`` while they fit; when the pixels left over after the
    last one exceed ``threshold``, one more window flush with the end is added.
    """
    if length < patch:
        return []
    starts = list(range(0, length - patch + 1, step))
    if length - (starts[-1] + patch) > threshold:
        starts.append(length - patch)
    return starts


def count_windows(length: int, patch: int, step: int, threshold: int) -> int:
    """``len(window_starts(...))`` in closed form.

    ``n(L) = (L-P)//step + 1 + [(L-P) % step > threshold]``, 0 when ``L < P``.
    """
    if length < patch:
        return 0
    return (length - patch) // step + 1 + int((length - patch) % step > threshold)


def patch_count(height: int, width: int, options: StoreOptions) -> int:
    """Number of patches an image of this size gives (after mod-crop to the scale)."""
    h, w = height - height % options.scale, width - width % options.scale
    return count_windows(h, options.patch, options.step, options.threshold) * count_windows(
        w, options.patch, options.step, options.threshold
    )


def val_indices(num_images: int, num_val: int) -> list[int]:
    """Which of ``num_images`` sorted images are held out: ``num_val`` evenly spaced ones."""
    return (
        sorted({int((k + 0.5) * num_images / num_val) for k in range(num_val)}) if num_val else []
    )


# ---------------------------------------------------------------------------- decoding (in workers)


@dataclass
class _Decoded:
    """What a worker sends back for one image."""

    index: int
    error: str | None = None
    sha256: str = ""
    hr: np.ndarray | None = None
    lr: np.ndarray | None = None
    size: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)


def _to_rgb8(pixels: np.ndarray, notes: list[str]) -> np.ndarray:
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        notes.append("16-bit, scaled to 8-bit")
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
        notes.append("grayscale, converted to RGB")
    return np.ascontiguousarray(pixels)


def _decode(index: int, path: str, scale: int, min_size: int) -> _Decoded:
    """Read, hash, convert to 8-bit RGB and degrade one image. ``min_size`` 0: keep any size."""
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        image = read_image(path)
    except OSError as exc:
        return _Decoded(index, error=f"cannot read ({exc.strerror or exc})")
    except ImageReadError as exc:
        return _Decoded(index, error=str(exc).removeprefix(f"{path}: "))
    notes: list[str] = []
    if image.alpha is not None:
        notes.append("alpha channel dropped")
    rgb = _to_rgb8(image.pixels, notes)
    h, w = rgb.shape[0] - rgb.shape[0] % scale, rgb.shape[1] - rgb.shape[1] % scale
    if h < max(min_size, scale) or w < max(min_size, scale):
        return _Decoded(index, sha256=digest, size=(h, w), notes=notes)
    hr, lr = bicubic_degrade(rgb, scale)
    return _Decoded(index, sha256=digest, hr=hr, lr=lr, size=(h, w), notes=notes)


def _init_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    die_with_parent(parent)


#: Longest wait for one decoded image from the pool: a hang guard, far above any real image.
DECODE_TIMEOUT_S = 1800.0


def _decoded_in_order(
    jobs: list[tuple[int, str, int, int]], workers: int, timeout_s: float = DECODE_TIMEOUT_S
) -> Iterator[_Decoded]:
    """Decode jobs in a process pool (or in-process with ``workers=0``), yielding in job order.

    No wait is unbounded: an image not decoded within ``timeout_s`` is an error, and on any
    error (or Ctrl-C) the pool's processes are killed instead of being waited for."""
    if workers <= 0:
        for job in jobs:
            yield _decode(*job)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                               initargs=(os.getpid(),))
    finished = False
    try:
        pending: deque[Future[_Decoded]] = deque()
        queue = iter(jobs)
        for job in queue:
            pending.append(pool.submit(_decode, *job))
            if len(pending) >= 2 * workers:
                break
        while pending:
            future = pending.popleft()
            try:
                result = future.result(timeout=timeout_s)
            except TimeoutError:
                raise DataStoreError(
                    f"a decoding process took more than {timeout_s:g} s for one image (hung?); "
                    "try --workers 0 to see which image"
                ) from None
            following = next(queue, None)
            if following is not None:
                pending.append(pool.submit(_decode, *following))
            yield result
        finished = True
    finally:
        if not finished:  # an error or an interruption: a hung decoder must not be waited for
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
        pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------ writer


@dataclass
class WriteProgress:
    """Reported after each image (and once at the start).

    Attributes:
        images_done: images handled so far (used, held out or skipped), including resumed ones.
        images_total: images to handle.
        patches: training patches written so far.
        resumed_from: images found already done in a partial file at the start (0: fresh start).
        restarted: why a partial file was discarded, or None.
    """

    images_done: int
    images_total: int
    patches: int
    resumed_from: int = 0
    restarted: str | None = None


@dataclass
class WriteSummary:
    """What ``write_store`` did.

    Attributes:
        path: the finished store.
        images: training images that gave patches.
        val_images: whole images in the ``val`` group.
        patches: training patches.
        skipped: ``(path, reason)`` for unreadable, corrupt, missing and too-small images.
        notes: note (e.g. "alpha channel dropped") → images it applies to.
        size_bytes: size of the store on disk.
        resumed_from: images taken from an interrupted run (0 when it started fresh).
        seconds: time spent in this call.
    """

    path: Path
    images: int
    val_images: int
    patches: int
    skipped: list[tuple[str, str]]
    notes: dict[str, list[str]]
    size_bytes: int
    resumed_from: int
    seconds: float


def partial_path(out: Path) -> Path:
    """Where ``write_store`` builds ``out`` before renaming it."""
    return out.with_name(out.name + ".partial")


def _fingerprint(images: list[Path], options: StoreOptions) -> str:
    listing = []
    for p in images:
        st = p.stat()
        listing.append([str(p), st.st_size, st.st_mtime_ns])
    blob = json.dumps(
        {"format_version": FORMAT_VERSION, "options": options.to_dict(), "images": listing}
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class _GuardedFile(io.FileIO):
    """The file below an HDF5 store being written: records the first failed write, drops the rest.

    HDF5 does not survive a failed write: after ENOSPC, EFBIG and the like every flush fails again,
    freeing its objects prints errors, and closing the file (or exiting) may crash the process. So
    HDF5 never sees the failure: writes after the first failure succeed without writing, the file
    closes cleanly, and the writer, which calls :meth:`check` after each image, discards the file.
    """

    failure: OSError | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.failure is None:
            done = 0
            try:
                while done < len(view):
                    n = self._write_raw(view[done:])
                    if not n:  # a short write with no error left to report: treat it as full
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    done += n
            except OSError as exc:
                self.failure = exc
        return len(view)

    def _write_raw(self, data: memoryview) -> int | None:
        return super().write(data)

    def truncate(self, size: int | None = None) -> int:
        if self.failure is None:
            try:
                return super().truncate(size)
            except OSError as exc:
                self.failure = exc
        return self.tell() if size is None else size

    def check(self, path: Path) -> None:
        """Raise the first failed write as a :class:`WriteError` about ``path``."""
        if self.failure is not None:
            raise WriteError(path, self.failure.errno or errno.EIO)

    def sync(self, path: Path) -> None:
        """Force what was written to disk (a failure to do so is a failed write too)."""
        self.check(path)
        try:
            os.fsync(self.fileno())
        except OSError as exc:
            raise WriteError(path, exc.errno or errno.EIO) from None


def _open_guarded(path: Path, mode: str) -> tuple[h5py.File, _GuardedFile]:
    """An HDF5 file (``mode`` "w" or "r+") on a :class:`_GuardedFile`, locked against a second
    writer (HDF5's own file locking does not apply to a file object). The lock is taken before a
    "w" truncates the file, so a second command never empties the file of a running one."""
    fd = os.open(path, os.O_RDWR | (os.O_CREAT if mode == "w" else 0), 0o666)
    raw = _GuardedFile(fd, "r+b")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DataStoreError(
                    f"{path} is being written by another spsr prepare-data; wait for it to end "
                    "(or stop it) and run this command again"
                ) from None
        if mode == "w":
            raw.truncate(0)
        return h5py.File(raw, mode), raw
    except BaseException:
        raw.close()
        raise


def _close_guarded(f: h5py.File, raw: _GuardedFile) -> None:
    try:
        if f.id.valid:
            f.close()
    finally:
        raw.close()


def _create(
    path: Path, options: StoreOptions, fingerprint: str, creation_args: dict[str, Any]
) -> tuple[h5py.File, _GuardedFile]:
    f, raw = _open_guarded(path, "w")
    P, p = options.patch, options.lr_patch
    filt: dict[str, Any] = (
        {} if options.compression == "none" else {"compression": options.compression}
    )
    f.create_dataset(
        "hr", (0, P, P, 3), np.uint8, maxshape=(None, P, P, 3), chunks=(1, P, P, 3), **filt
    )
    f.create_dataset(
        "lr", (0, p, p, 3), np.uint8, maxshape=(None, p, p, 3), chunks=(1, p, p, 3), **filt
    )
    f.create_dataset("source", (0,), np.int32, maxshape=(None,), chunks=(16384,))
    f.create_dataset("coords", (0, 2), np.int32, maxshape=(None, 2), chunks=(8192, 2))
    src = f.create_group("sources")
    src.create_dataset("path", (0,), h5py.string_dtype(), maxshape=(None,), chunks=(1024,))
    src.create_dataset("sha256", (0,), "S64", maxshape=(None,), chunks=(1024,))
    src.create_dataset("size", (0, 2), np.int32, maxshape=(None, 2), chunks=(1024, 2))
    f.create_group("val")
    attrs = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "complete": False,
        "scale": options.scale,
        "patch": options.patch,
        "lr_patch": p,
        "step": options.step,
        "threshold": options.threshold,
        "compression": options.compression,
        "degradation": DEGRADATION,
        "creation_args": json.dumps(creation_args, sort_keys=True),
        "spsr_version": spsr.__version__,
        "fingerprint": fingerprint,
        "progress_images": 0,
        "progress_patches": 0,
        "progress_sources": 0,
        "progress_val": 0,
        "skipped": "[]",
        "notes": "{}",
    }
    f.attrs.update(attrs)
    f.flush()
    return f, raw


def _reopen_partial(
    path: Path, fingerprint: str
) -> tuple[tuple[h5py.File, _GuardedFile] | None, str | None]:
    """Open an interrupted run's file to resume it; (None, why) when it cannot be resumed."""
    try:
        f, raw = _open_guarded(path, "r+")
    except DataStoreError:
        raise  # another writer holds it: not ours to discard
    except Exception as exc:  # noqa: BLE001  (a file killed mid-write fails in many ways)
        return None, f"unreadable ({exc.__class__.__name__})"
    try:
        if f.attrs.get("fingerprint") != fingerprint:
            _close_guarded(f, raw)
            return None, "made with other options or other images"
        n, m, v = (
            int(f.attrs[k]) for k in ("progress_patches", "progress_sources", "progress_val")
        )
        for name in ("hr", "lr", "source", "coords"):
            f[name].resize(n, axis=0)
        for name in ("path", "sha256", "size"):
            f["sources"][name].resize(m, axis=0)
        for key in list(f["val"].keys()):
            if int(key) >= v:
                del f["val"][key]
        return (f, raw), None
    except Exception as exc:  # noqa: BLE001
        _close_guarded(f, raw)
        return None, f"inconsistent ({exc.__class__.__name__})"


def _append(ds: h5py.Dataset, values: np.ndarray) -> None:
    n = ds.shape[0]
    ds.resize(n + len(values), axis=0)
    ds[n : n + len(values)] = values


def _cut(img: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """The ``size``×``size`` windows at each (y, x) of the grid ``ys`` × ``xs``, row-major.

    Returns:
        A contiguous ``(len(ys) * len(xs), size, size, C)`` array.
    """
    windows = np.lib.stride_tricks.sliding_window_view(
        img, (size, size), axis=(0, 1)
    )  # (H', W', C, size, size)
    grid = windows[ys[:, None], xs[None, :]]
    return np.ascontiguousarray(grid.transpose(0, 1, 3, 4, 2).reshape(-1, size, size, img.shape[2]))


def _write_patches(f: h5py.File, item: _Decoded, row: int, options: StoreOptions) -> int:
    assert item.hr is not None and item.lr is not None
    P, p, s = options.patch, options.lr_patch, options.scale
    ys = np.array(window_starts(item.hr.shape[0], P, options.step, options.threshold))
    xs = np.array(window_starts(item.hr.shape[1], P, options.step, options.threshold))
    coords = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.int32)
    hr = _cut(item.hr, ys, xs, P)
    lr = _cut(item.lr, ys // s, xs // s, p)
    _append(f["hr"], hr)
    _append(f["lr"], lr)
    _append(f["source"], np.full(len(coords), row, dtype=np.int32))
    _append(f["coords"], coords)
    return len(coords)


def _write_val(f: h5py.File, item: _Decoded, row: int, j: int, name: str, compression: str) -> None:
    filt: dict[str, Any] = {} if compression == "none" else {"compression": compression}
    g = f["val"].create_group(f"{j:05d}")
    g.attrs["source"] = row
    g.attrs["name"] = name
    g.create_dataset("hr", data=item.hr, chunks=True, **filt)
    g.create_dataset("lr", data=item.lr, chunks=True, **filt)


def _add_source(f: h5py.File, path: Path, item: _Decoded) -> int:
    src = f["sources"]
    row = src["path"].shape[0]
    _append(src["path"], np.array([str(path)], dtype=object))
    _append(src["sha256"], np.array([item.sha256.encode()], dtype="S64"))
    _append(src["size"], np.array([item.size], dtype=np.int32))
    return row


def write_store(
    images: list[Path],
    out: str | os.PathLike[str],
    options: StoreOptions,
    workers: int = 0,
    overwrite: bool = False,
    missing: list[Path] | None = None,
    creation_args: dict[str, Any] | None = None,
    on_progress: Callable[[WriteProgress], None] | None = None,
) -> WriteSummary:
    """Build a patch store from images (the library side of ``spsr prepare-data``).

    Args:
        images: image files, already sorted (see ``spsr.data.sources.expand_sources``).
        out: the store to create; built as ``out + ".partial"`` and renamed when complete.
        options: scale, patch, step, threshold, compression, val, limit.
        workers: decoding processes (0: decode in this process).
        overwrite: replace an existing ``out`` (it is kept until the new store is complete).
        missing: listed paths that do not exist, recorded as skipped.
        creation_args: what the user asked for, recorded in the ``creation_args`` attribute.
        on_progress: called after each image with a ``WriteProgress``.

    Returns:
        A ``WriteSummary``.

    Raises:
        DataStoreError: ``out`` exists (without ``overwrite``), no images, or no training patch.
        ConfigError: more ``val`` images than images to spare.
    """
    start = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataStoreError(f"{out} already exists; pass --overwrite to replace it")
    check_writable(out.parent)  # a read-only or full location fails before any decoding
    images = [Path(p).resolve() for p in images]
    images = images[: options.limit] if options.limit else images
    if not images:
        raise DataStoreError("no images found in the given sources")
    if options.val >= len(images):
        raise ConfigError(f"--val {options.val} leaves no training image out of {len(images)}")
    held_out = set(val_indices(len(images), options.val))
    fingerprint = _fingerprint(images, options)
    args = creation_args if creation_args is not None else {"options": options.to_dict()}
    tmp = partial_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    damaged: str | None = None
    for _attempt in range(2):
        opened, restarted = (None, damaged)
        if tmp.exists():
            opened, restarted = _reopen_partial(tmp, fingerprint)
            if opened is None:
                tmp.unlink()
        resumed = opened is not None
        f, raw = opened if opened is not None else _create(tmp, options, fingerprint, args)
        try:
            raw.check(tmp)
            first = int(f.attrs["progress_images"])
            skipped: list[list[str]] = json.loads(f.attrs["skipped"])
            notes: dict[str, list[str]] = json.loads(f.attrs["notes"])
            if first == 0:
                skipped = [[str(p), "not found"] for p in (missing or [])]
            patches, n_val = int(f.attrs["progress_patches"]), int(f.attrs["progress_val"])
            small_side = 0  # the largest short side of the images too small for the patch
            report = on_progress or (lambda _p: None)
            report(WriteProgress(first, len(images), patches, first, restarted))
            jobs = [
                (i, str(images[i]), options.scale, 0 if i in held_out else options.patch)
                for i in range(first, len(images))
            ]
            for item in _decoded_in_order(jobs, workers):
                path = images[item.index]
                if item.hr is not None:
                    for note in item.notes:
                        notes.setdefault(note, []).append(str(path))
                if item.error is not None:
                    skipped.append([str(path), item.error])
                elif item.hr is None:
                    h, w = item.size
                    small_side = max(small_side, min(h, w))
                    skipped.append([str(path), f"smaller than the patch ({h}x{w} < {options.patch})"])
                elif item.index in held_out:
                    _write_val(
                        f, item, _add_source(f, path, item), n_val, path.stem, options.compression
                    )
                    n_val += 1
                else:
                    patches += _write_patches(f, item, _add_source(f, path, item), options)
                f.attrs.update(
                    {
                        "progress_images": item.index + 1,
                        "progress_patches": patches,
                        "progress_sources": f["sources"]["path"].shape[0],
                        "progress_val": n_val,
                        "skipped": json.dumps(skipped),
                        "notes": json.dumps(notes),
                    }
                )
                f.flush()
                raw.check(tmp)
                report(WriteProgress(item.index + 1, len(images), patches, first, restarted))
            if patches == 0:
                fits = small_side // options.scale * options.scale
                hint = (
                    f"; the largest is {small_side} px on its short side: try --patch {fits} "
                    "(or add larger images)"
                    if fits >= options.scale else ""
                )
                raise DataStoreError(
                    f"no training patches: all {len(images) - n_val} training images were unreadable "
                    f"or smaller than the {options.patch}px patch{hint}"
                )
            num_images = len(np.unique(f["source"][:]))
            for key in (
                "fingerprint",
                "progress_images",
                "progress_patches",
                "progress_sources",
                "progress_val",
            ):
                del f.attrs[key]
            f.attrs.update(
                {
                    "num_patches": patches,
                    "num_images": num_images,
                    "num_val": n_val,
                    "num_sources": f["sources"]["path"].shape[0],
                }
            )
            f.close()
            raw.sync(tmp)
            raw.close()
            # Only now, with every byte on disk, the store says it is complete.
            f, raw = _open_guarded(tmp, "r+")
            f.attrs["complete"] = True
            f.close()
            raw.sync(tmp)
        except (DataStoreError, WriteError) as exc:
            _close_guarded(f, raw)
            tmp.unlink(missing_ok=True)
            if isinstance(exc, WriteError):
                raise exc.with_note(
                    f"the unfinished store {tmp.name} was removed and {out.name} not written"
                ) from None
            raise
        except OSError as exc:
            # HDF5 is not crash-safe: a file killed mid-write may open but fail on the next write.
            # Such a partial file is discarded and the store is built again from the start.
            if not resumed or damaged is not None:
                raise
            _close_guarded(f, raw)
            tmp.unlink()
            damaged = f"damaged by the interruption ({exc.__class__.__name__})"
            continue
        finally:
            _close_guarded(f, raw)
        break
    publish(tmp, out)
    fsync_folder(out.parent)
    return WriteSummary(
        out,
        num_images,
        n_val,
        patches,
        [(a, b) for a, b in skipped],
        notes,
        out.stat().st_size,
        first,
        time.perf_counter() - start,
    )


# ------------------------------------------------------------------------------------------ reader


def _fail(path: Path, why: str) -> DataStoreError:
    return DataStoreError(f"{path}: {why}")


class PatchStore:
    """Read access to a finished patch store, validated on opening.

    Per-patch reads only (``read_patch(i)``): HDF5 fancy indexing is two orders of magnitude slower.

    Args:
        path: the ``.h5`` store.

    Raises:
        DataStoreError: missing file, not HDF5, not a patch store, another format version, an
            interrupted (incomplete) store, or datasets that do not match the attributes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            hint = (
                " (an interrupted run: re-run prepare-data)"
                if partial_path(self.path).exists()
                else ""
            )
            raise _fail(self.path, f"no such patch store{hint}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError:
            raise _fail(self.path, "not an HDF5 file (or a damaged one)") from None
        try:
            self._validate()
        except BaseException:
            self._file.close()
            raise
        self._hr = self._file["hr"]
        self._lr = self._file["lr"]

    def _validate(self) -> None:
        f, a = self._file, self._file.attrs
        if a.get("format") != FORMAT_NAME:
            raise _fail(self.path, "not an spsr patch store (made by spsr prepare-data)")
        version = int(a.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise _fail(
                self.path,
                f"patch store format version {version}, this spsr reads version "
                f"{FORMAT_VERSION}: re-create it with spsr prepare-data",
            )
        if not bool(a.get("complete", False)):
            raise _fail(
                self.path, "incomplete patch store (an interrupted prepare-data): re-run it"
            )
        try:
            s, P, p, n = (int(a[k]) for k in ("scale", "patch", "lr_patch", "num_patches"))
            m = f["sources"]["path"].shape[0]
            expected = {
                "hr": ((n, P, P, 3), np.uint8),
                "lr": ((n, p, p, 3), np.uint8),
                "source": ((n,), np.int32),
                "coords": ((n, 2), np.int32),
            }
            for name, (shape, dtype) in expected.items():
                ds = f[name]
                if ds.shape != shape or ds.dtype != dtype:
                    raise _fail(
                        self.path,
                        f"broken patch store: /{name} is {ds.shape} {ds.dtype}, "
                        f"expected {shape} {np.dtype(dtype)}",
                    )
            if (
                p * s != P
                or f["sources"]["sha256"].shape[0] != m
                or f["sources"]["size"].shape[0] != m
            ):
                raise _fail(self.path, "broken patch store: attributes and datasets disagree")
            if n and not 0 <= int(f["source"][:].max()) < m:
                raise _fail(self.path, "broken patch store: /source points outside /sources")
        except KeyError as exc:
            raise _fail(
                self.path, f"broken patch store: missing {exc.args[0] if exc.args else 'item'}"
            ) from None

    def __enter__(self) -> PatchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    @property
    def attrs(self) -> dict[str, Any]:
        return {
            k: (v.item() if isinstance(v, np.generic) else v) for k, v in self._file.attrs.items()
        }

    @property
    def scale(self) -> int:
        return int(self._file.attrs["scale"])

    @property
    def patch(self) -> int:
        return int(self._file.attrs["patch"])

    @property
    def lr_patch(self) -> int:
        return int(self._file.attrs["lr_patch"])

    def __len__(self) -> int:
        return self._hr.shape[0]

    def _damaged(self, what: str, exc: OSError) -> DataStoreError:
        reason = " ".join(str(exc).split()) or exc.__class__.__name__
        return _fail(self.path, f"damaged patch store: {what} cannot be read ({reason}); "
                                "re-create it with spsr prepare-data")

    def read_patch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(lr, hr)`` uint8 HWC arrays of patch ``index`` (one chunk read each).

        Raises:
            DataStoreError: the patch's compressed chunk is damaged.
        """
        try:
            return self._lr[index], self._hr[index]
        except OSError as exc:
            raise self._damaged(f"patch {index}", exc) from None

    def patch_origin(self, index: int) -> tuple[str, int, int]:
        """``(source path, y, x)``: the image and HR top-left corner a patch was cut from."""
        row = int(self._file["source"][index])
        y, x = (int(v) for v in self._file["coords"][index])
        return self.source_paths()[row], y, x

    def source_paths(self) -> list[str]:
        return [p.decode() if isinstance(p, bytes) else p for p in self._file["sources"]["path"][:]]

    def source_hashes(self) -> list[str]:
        return [h.decode() for h in self._file["sources"]["sha256"][:]]

    @property
    def num_val(self) -> int:
        return len(self._file["val"])

    def read_val(self, index: int) -> tuple[np.ndarray, np.ndarray, str]:
        """``(lr, hr, name)`` of held-out image ``index`` (whole images, uint8 HWC)."""
        g = self._file["val"][f"{index:05d}"]
        try:
            return g["lr"][()], g["hr"][()], str(g.attrs["name"])
        except OSError as exc:
            raise self._damaged(f"held-out image {index}", exc) from None


# -------------------------------------------------------------------------------------------- info


@dataclass
class StoreInfo:
    """A summary of what a store holds (``spsr prepare-data --info``)."""

    path: str
    format_version: int
    scale: int
    patch: int
    lr_patch: int
    step: int
    threshold: int
    compression: str
    degradation: str
    num_patches: int
    num_images: int
    num_val: int
    num_skipped: int
    size_bytes: int
    spsr_version: str
    creation_args: dict[str, Any]
    #: The images held out for validation (``--val``), as their source paths.
    val_images: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_info(path: str | os.PathLike[str]) -> StoreInfo:
    """Open, validate and summarise a store. Raises ``DataStoreError`` like ``PatchStore``."""
    with PatchStore(path) as store:
        a = store.attrs
        return StoreInfo(
            path=str(store.path),
            format_version=int(a["format_version"]),
            scale=int(a["scale"]),
            patch=int(a["patch"]),
            lr_patch=int(a["lr_patch"]),
            step=int(a["step"]),
            threshold=int(a["threshold"]),
            compression=str(a["compression"]),
            degradation=str(a["degradation"]),
            num_patches=int(a["num_patches"]),
            num_images=int(a["num_images"]),
            num_val=int(a["num_val"]),
            num_skipped=len(json.loads(a["skipped"])),
            size_bytes=store.path.stat().st_size,
            spsr_version=str(a["spsr_version"]),
            creation_args=json.loads(a["creation_args"]),
            val_images=_val_sources(store._file),
        )


def _val_sources(f: h5py.File) -> list[str]:
    """The source paths of a store's held-out images, in their order."""
    paths = f["sources"]["path"]
    out = []
    for key in sorted(f["val"].keys()):
        row = int(f["val"][key].attrs["source"])
        value = paths[row]
        out.append(value.decode() if isinstance(value, bytes) else str(value))
    return out
