"""Download a model file into its cache, verified, atomically, with resumption and an offline switch.

The one place in spsr that touches the network. A :class:`FileSpec` says what a file is (its
canonical URL, its file name in the cache, its digest); :func:`ensure_file` returns a verified local
copy, downloading it when it is missing or corrupt, and :func:`ensure_files` does that for every file
a command needs and reports *all* that cannot be had in one :class:`MissingFilesError`.

How a download goes:

1. an exclusive lock on ``<file>.lock`` (two processes never write the same file);
2. bytes go to ``<file>.part``; a ``.part`` left by an interrupted download is resumed with an HTTP
   ``Range`` request (a server that ignores it answers 200 and the file restarts from 0);
3. a connection that drops before ``Content-Length`` bytes is retried (resuming) a few times;
4. the complete ``.part`` is checked against the spec's digest; a mismatch deletes it (after a
   resumed download, one fresh try follows), it is never renamed into place;
5. :func:`spsr.atomic.publish` renames it to its final name, so readers see no file or the whole file.

Network access is forbidden by ``SPSR_OFFLINE=1`` (also ``true``/``yes``/``on``) or by
:func:`fetch_settings` ``(offline=True)`` (the CLI's ``--offline``). ``SPSR_DOWNLOAD_MIRROR=URL``
fetches every file from ``URL/<file name>`` instead of its canonical source (a local mirror; the
digest is checked all the same). The library never prints: progress and notes go to the callbacks of
:class:`FetchSettings`, which the CLI renders.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from spsr.atomic import publish
from spsr.errors import MissingWeightsError, WriteError, write_errno

try:
    import fcntl
except ImportError:  # not POSIX (Windows): downloads are then not guarded against a second process
    fcntl = None  # type: ignore[assignment]

OFFLINE_ENV = "SPSR_OFFLINE"
MIRROR_ENV = "SPSR_DOWNLOAD_MIRROR"
DIGEST_KINDS = ("sha256", "sha256-prefix", "git-blob-sha1")
_CHUNK = 1 << 20

ProgressFn = Callable[["FileSpec", int, "int | None"], None]
NoteFn = Callable[[str], None]


@dataclass(frozen=True)
class FileSpec:
    """A model file spsr can fetch.

    Attributes:
        key: short identifier (``alexnet``, ``vgg19``, ``resnet18``, ``ma-model``).
        title: what it is, for messages (``AlexNet ImageNet weights``).
        url: the canonical source.
        filename: its name in the cache folder.
        digest_kind: ``sha256`` (full hex digest), ``sha256-prefix`` (torchvision's convention: the
            file name's hash part is the start of the SHA-256) or ``git-blob-sha1`` (SHA-1 of
            ``b"blob <size>\\0"`` + content, the id git gives the file).
        digest: the hex digest (or prefix) of the right file.
        cache_dir: returns the folder the file lives in (called each time: it reads the environment).
        cache_env: the environment variable that moves that folder (for messages).
    """

    key: str
    title: str
    url: str
    filename: str
    digest_kind: str
    digest: str
    cache_dir: Callable[[], Path]
    cache_env: str = ""

    def __post_init__(self) -> None:
        if self.digest_kind not in DIGEST_KINDS:
            raise ValueError(f"unknown digest kind {self.digest_kind!r}")

    @property
    def cache_path(self) -> Path:
        """Where the verified file is kept."""
        return self.cache_dir() / self.filename

    @property
    def source_url(self) -> str:
        """The URL it is fetched from: the canonical one, or ``$SPSR_DOWNLOAD_MIRROR/<filename>``."""
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        return f"{mirror.rstrip('/')}/{self.filename}" if mirror else self.url


@dataclass(frozen=True)
class Need:
    """A file a command needs: the spec, a path the user gave instead (used as is, not digest-checked:
    it may be their own variant), the option that gives such a path, and what needs it.

    Attributes:
        spec: the file.
        explicit: the user's path, or None for the cache.
        option: the command's option that supplies the file (``--lpips-backbone PATH``).
        purpose: what needs it (``metric lpips``, ``the VGG19 perceptual loss``).
    """

    spec: FileSpec
    explicit: str | None = None
    option: str = ""
    purpose: str = ""


@dataclass(frozen=True)
class FetchSettings:
    """How :func:`ensure_file` behaves in the current context.

    Attributes:
        offline: forbid network access (None: ``$SPSR_OFFLINE``).
        on_progress: called as ``fn(spec, bytes_done, bytes_total_or_None)`` while downloading.
        on_note: called with one line after a file is fetched (what, from where, to where) or
            when a cached copy is found corrupt.
        timeout: seconds without data before a connection counts as dropped.
        attempts: tries per file (resuming after a dropped connection).
    """

    offline: bool | None = None
    on_progress: ProgressFn | None = None
    on_note: NoteFn | None = None
    timeout: float = 30.0
    attempts: int = 3

    @property
    def is_offline(self) -> bool:
        if self.offline is not None:
            return self.offline
        return env_offline()


_DEFAULT_SETTINGS = FetchSettings()
_SETTINGS: contextvars.ContextVar[FetchSettings] = contextvars.ContextVar("spsr_fetch_settings")


def env_offline() -> bool:
    """``$SPSR_OFFLINE`` is set to 1 / true / yes / on."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def current_settings() -> FetchSettings:
    """The settings :func:`ensure_file` uses now."""
    return _SETTINGS.get(_DEFAULT_SETTINGS)


@contextlib.contextmanager
def fetch_settings(**changes: object) -> Iterator[FetchSettings]:
    """Within the block, fetches use these settings (fields of :class:`FetchSettings`; ``None``
    values leave a field as it was)."""
    base = _SETTINGS.get(_DEFAULT_SETTINGS)
    settings = replace(base, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]
    token = _SETTINGS.set(settings)
    try:
        yield settings
    finally:
        _SETTINGS.reset(token)


class DownloadError(MissingWeightsError):
    """A download that failed (network error, HTTP error, incomplete, wrong digest)."""


@dataclass
class MissingFilesError(MissingWeightsError):
    """Files a command needs that are neither cached nor downloadable; ``lines`` has one per file."""

    lines: list[str] = field(default_factory=list)
    offline: bool = False

    def __str__(self) -> str:
        n = len(self.lines)
        why = "offline: --offline or SPSR_OFFLINE" if self.offline else "download failed"
        head = f"{n} model file{'s' if n != 1 else ''} missing ({why}); put each by hand:"
        return "\n".join([head, *(f"  {line}" for line in self.lines)]) if n > 1 else (
            f"model file missing ({why}): {self.lines[0]}" if self.lines else head
        )


# ------------------------------------------------------------------------------------ digests

_VERIFIED: dict[tuple[str, int, int, str], bool] = {}


def file_digest(path: str | os.PathLike[str], kind: str) -> str:
    """The hex digest of a file in the sense of ``kind`` (see :class:`FileSpec`)."""
    p = Path(path)
    if kind == "git-blob-sha1":
        h = hashlib.sha1()
        h.update(b"blob %d\0" % p.stat().st_size)
    else:
        h = hashlib.sha256()
    with open(p, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_matches(path: str | os.PathLike[str], spec: FileSpec) -> bool:
    """The file has the spec's digest (remembered per path, size and mtime within a process)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, spec.digest)
    if key not in _VERIFIED:
        actual = file_digest(p, spec.digest_kind)
        want = spec.digest.lower()
        _VERIFIED[key] = actual.startswith(want) if spec.digest_kind == "sha256-prefix" else actual == want
    return _VERIFIED[key]


# ----------------------------------------------------------------------------------- download


def manual_line(need: Need | FileSpec, reason: str = "") -> str:
    """One line saying how to provide a missing file by hand."""
    need = need if isinstance(need, Need) else Need(need)
    s = need.spec
    what = f"{need.purpose}: " if need.purpose else ""
    option = f", or pass {need.option}" if need.option else ""
    why = f" ({reason})" if reason else ""
    env = f" ({s.cache_env} moves that folder)" if s.cache_env else ""
    return f"{what}{s.title}: download {s.source_url} to {s.cache_path}{env}{option}{why}"


def download(spec: FileSpec, settings: FetchSettings | None = None) -> Path:
    """Fetch ``spec`` into its cache path (lock, ``.part``, resume, verify, rename).

    Returns:
        The verified cache path.

    Raises:
        DownloadError: the file could not be fetched or did not match its digest (its ``.part`` is
            kept only when it is a clean prefix that a later call can resume).
    """
    settings = settings or current_settings()
    dest = spec.cache_path
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the cache folder {dest.parent}: {exc.strerror}") from None
    part = dest.with_name(dest.name + ".part")
    with open(dest.with_name(dest.name + ".lock"), "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be fetching the same file
        if dest.is_file() and digest_matches(dest, spec):
            return dest
        last = ""
        fresh_retry_done = False
        for _ in range(max(1, settings.attempts)):
            resumed = part.is_file() and part.stat().st_size > 0
            try:
                complete = _transfer(spec, part, settings)
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and resumed:  # the .part is as long as (or longer than) the file
                    complete = True
                else:
                    part.unlink(missing_ok=True)
                    raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                network = isinstance(exc, (urllib.error.URLError, http.client.HTTPException))
                code = None if network else write_errno(exc)
                if code is not None:  # a full or read-only cache: another try would fail too
                    raise WriteError(part, code, "what was downloaded is kept; a later fetch "
                                     "resumes it") from None
                reason = getattr(exc, "reason", None) or exc
                last = f"{type(exc).__name__}: {reason}" if not str(reason) else str(reason)
                continue  # keep the .part: the next try resumes
            if not complete:
                last = "the connection closed before the whole file arrived"
                continue
            if digest_matches(part, spec):
                publish(part, dest)  # the .part is resumable, so not atomic_path's temp name
                return dest
            part.unlink(missing_ok=True)
            last = f"the download does not match its {spec.digest_kind} digest {spec.digest}"
            if resumed and not fresh_retry_done:
                fresh_retry_done = True  # the old .part may have been of another file: start over
                continue
            break
        raise DownloadError(f"download failed: {last}")


def _transfer(spec: FileSpec, part: Path, settings: FetchSettings) -> bool:
    """One HTTP request appending to (or restarting) ``part``; True when the body was complete."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "spsr (model file fetch)"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(spec.source_url, headers=headers)
    with urllib.request.urlopen(request, timeout=settings.timeout) as response:
        length = response.headers.get("Content-Length")
        body = int(length) if length and length.isdigit() else None
        if have and response.status == 206:
            mode, done = "ab", have
        else:
            mode, done = "wb", 0
        total = None if body is None else done + body
        with open(part, mode) as out:
            if settings.on_progress:
                settings.on_progress(spec, done, total)
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (http.client.IncompleteRead, TimeoutError, ConnectionError):
                    return False
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if settings.on_progress:
                    settings.on_progress(spec, done, total)
    return total is None or done >= total


# ------------------------------------------------------------------------------------- ensure


def ensure_file(need: Need | FileSpec, settings: FetchSettings | None = None) -> Path:
    """A usable local copy of a needed file.

    An explicit path is returned when it exists (not digest-checked). Otherwise the cache path is
    returned when its digest matches; a missing or corrupt cached file is downloaded (when online)
    and a corrupt one is never returned.

    Raises:
        MissingWeightsError: an explicit path that does not exist.
        MissingFilesError: offline, or the download failed (the line says how to get it by hand).
    """
    need = need if isinstance(need, Need) else Need(need)
    settings = settings or current_settings()
    spec = need.spec
    if need.explicit:
        path = Path(need.explicit).expanduser()
        if not path.is_file():
            via = f" (given with {need.option.split()[0]})" if need.option else ""
            raise MissingWeightsError(f"{spec.title} file not found: {path}{via}")
        return path
    cached = spec.cache_path
    corrupt = False
    if cached.is_file():
        if digest_matches(cached, spec):
            return cached
        corrupt = True
    if settings.is_offline:
        reason = "the cached copy is corrupt" if corrupt else ""
        raise MissingFilesError(lines=[manual_line(need, reason)], offline=True)
    if corrupt and settings.on_note:
        settings.on_note(f"{cached} does not match its digest: fetching it again")
    try:
        path = download(spec, settings)
    except DownloadError as exc:
        raise MissingFilesError(lines=[manual_line(need, str(exc))]) from None
    if settings.on_note:
        settings.on_note(f"fetched {spec.title} from {spec.source_url} to {path}")
    return path


def missing(needs: Sequence[Need]) -> list[Need]:
    """The needs without a usable local file (nothing is downloaded)."""
    out = []
    for need in needs:
        if need.explicit:
            if not Path(need.explicit).expanduser().is_file():
                out.append(need)
        elif not (need.spec.cache_path.is_file() and digest_matches(need.spec.cache_path, need.spec)):
            out.append(need)
    return out


def ensure_files(needs: Sequence[Need], settings: FetchSettings | None = None) -> dict[str, Path]:
    """:func:`ensure_file` for every need (each file once), reporting every failure together.

    Returns:
        ``{spec.key or explicit path: local path}``.

    Raises:
        MissingWeightsError: an explicit path that does not exist (first such one).
        MissingFilesError: one line per file that could not be had.
    """
    settings = settings or current_settings()
    seen: set[tuple[str, str | None]] = set()
    found: dict[str, Path] = {}
    lines: list[str] = []
    offline = settings.is_offline
    for need in needs:
        ident = (need.spec.key, need.explicit)
        if ident in seen:
            continue
        seen.add(ident)
        try:
            found[need.explicit or need.spec.key] = ensure_file(need, settings)
        except MissingFilesError as exc:
            lines.extend(exc.lines)
        except MissingWeightsError as exc:
            lines.append(f"{need.purpose}: {exc}" if need.purpose else str(exc))
    if lines:
        raise MissingFilesError(lines=lines, offline=offline)
    return found
