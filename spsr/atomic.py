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
    ``path`` is left as it was.

    Args:
        path: the destination file.
        private: mode 0600 whatever the umask (secrets, e.g. a user study's answer key).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, target, private=private)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
