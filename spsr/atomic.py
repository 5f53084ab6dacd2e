"""Files written whole or not at all: a temporary name in the same folder, then a rename.

Every file spsr writes goes through here, so that a crash or Ctrl-C never leaves a half-written
file under the real name, and so that finished files get the permissions the user's umask asks
for (``tempfile.mkstemp`` creates its files with mode 0600, which would otherwise survive the
rename: eval tables, charts and weights unreadable by the user's group and by web servers).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from spsr.errors import raise_write_failure

PathLike = str | os.PathLike[str]


def current_umask() -> int:
    """The process umask, read without changing it for longer than a moment."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode(private: bool = False) -> int:
    """Permissions of a new regular file: 0666 less the umask, or 0600 for a private one."""
    return 0o600 if private else 0o666 & ~current_umask()


def folder_mode() -> int:
    """Permissions of a new folder: 0777 less the umask."""
    return 0o777 & ~current_umask()


def publish(tmp: PathLike, path: PathLike, *, private: bool = False) -> Path:
    """Give a finished temporary file its final permissions and rename it over ``path``."""
    os.chmod(tmp, file_mode(private))
    os.replace(tmp, path)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: PathLike, *, private: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block succeeds.

    The folder of ``path`` is created. On an exception the temporary file is removed and
    ``path`` is left as it was. A full, read-only, forbidden or size-limited location (ENOSPC,
    EDQUOT, EROFS, EACCES, EPERM, EFBIG), also when a library wraps it (``torch.save``), is raised
    as a :class:`~spsr.errors.WriteError` naming ``path``.

    Args:
        path: the destination file.
        private: mode 0600 whatever the umask (secrets, e.g. a user study's answer key).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise_write_failure(exc, target)
        raise
    try:
        yield Path(tmp)
        publish(tmp, target, private=private)
    except Exception as exc:
        raise_write_failure(exc, target)
        raise
    finally:
        with contextlib.suppress(OSError):
            if os.path.exists(tmp):
                os.unlink(tmp)


def check_writable(folder: PathLike) -> None:
    """Fail now, before any work, when files cannot be created in ``folder``.

    Creates and removes one empty temporary file in ``folder``, or, when ``folder`` does not
    exist yet, in its nearest existing parent (nothing is left behind, no folder is created).

    Raises:
        WriteError: read-only, forbidden, full (ENOSPC, EDQUOT, EROFS, EACCES, EPERM).
    """
    where = Path(os.path.abspath(folder))
    while not where.exists() and where.parent != where:
        where = where.parent
    if not where.is_dir():
        return  # a file in the way: the command's own check says so in its words
    try:
        fd, tmp = tempfile.mkstemp(prefix=".spsr-write-check.", dir=where)
    except OSError as exc:
        raise_write_failure(exc, folder)
        raise
    os.close(fd)
    os.unlink(tmp)


def fsync_folder(folder: PathLike) -> None:
    """Force a folder's entries (a rename into it) to disk, where the platform can."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: PathLike, data: bytes, *, private: bool = False, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; ``fsync`` also forces it to disk before the rename."""
    with atomic_path(path, private=private) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text_atomic(path: PathLike, text: str, *, private: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines written as given)."""
    with atomic_path(path, private=private) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)
