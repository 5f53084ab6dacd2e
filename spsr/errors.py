"""Errors a user can cause. The CLI turns each into one line and a non-zero exit."""

from __future__ import annotations

import errno as _errno
import os as _os
import re as _re


class SpsrError(Exception):
    """Base class of every error that is the user's input, not a bug."""


class CheckpointError(SpsrError):
    """A weights file that cannot be read, has an unknown layout, or does not fit the model."""


class ImageReadError(SpsrError):
    """A file that is not an image or is corrupt."""


class ImageTooLargeError(ImageReadError):
    """An image whose header claims more pixels than the decode limit (a decompression bomb)."""


class DataStoreError(SpsrError):
    """An HDF5 patch store that is missing, broken, or of another format version."""


class MissingWeightsError(SpsrError):
    """Pretrained weights (VGG19, AlexNet, NRQM model, ...) that are not available offline."""


class OutOfMemoryEstimate(SpsrError):
    """Work whose estimated memory need is more than the machine has available."""


class ConfigError(SpsrError):
    """An invalid configuration value or combination of options."""


def user_message(exc: BaseException) -> str:
    """The one-line text of a user error, also when a DataLoader worker raised it.

    PyTorch re-raises a worker's exception in the main process with the worker's whole traceback
    as its message; the line that matters is the last one, ``module.Class: text``.
    """
    text = str(exc)
    if "\nOriginal Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        head, sep, rest = last.partition(": ")
        text = rest if sep and "Error" in head and " " not in head else last
    return text


class NonFiniteOutputError(SpsrError, ValueError):
    """A model produced NaN or infinite values (broken weights, or fp16 overflow)."""


# ------------------------------------------------------------------------------ failed writes

#: The errors of a full, read-only, forbidden or size-limited output location, with the cause
#: in words and what the user can do about it.
WRITE_ERRNOS: dict[int, tuple[str, str]] = {
    _errno.ENOSPC: ("no space left on device", "free some space"),
    _errno.EDQUOT: ("disk quota exceeded", "free some space or raise the quota"),
    _errno.EROFS: ("read-only file system", "give an output in a writable folder"),
    _errno.EACCES: ("permission denied", "give an output in a writable folder, or fix its permissions"),
    _errno.EPERM: ("operation not permitted", "give an output in a writable folder, or fix its permissions"),
    _errno.EFBIG: (
        "file too large (for the file system, or the `ulimit -f` limit)",
        "write to another file system, or raise `ulimit -f`",
    ),
}

# HDF5 reports a failed write as a RuntimeError whose text holds "errno = 28".
_ERRNO_IN_TEXT = _re.compile(r"errno = (\d+)")


class WriteError(SpsrError):
    """An output that could not be written: the path, the cause, and what to do, in one line.

    Raised with whatever work was lost or kept said in ``note`` (e.g. "the previous checkpoint is
    intact"). Deliberately not an ``OSError``: code that skips an unreadable input on ``OSError``
    must not skip past a full disk.
    """

    def __init__(
        self,
        path: str | _os.PathLike[str],
        code: int,
        note: str = "",
        verb: str = "write",
        hint: str | None = None,
    ) -> None:
        cause, remedy = WRITE_ERRNOS.get(code, (_os.strerror(code).lower(), "check the disk"))
        hint = f"{remedy}, then run the command again" if hint is None else hint
        name = _errno.errorcode.get(code, str(code))
        text = f"cannot {verb} {_os.fspath(path)}: {cause} ({name})"
        if note:
            text += f"; {note}"
        text += f"; {hint}"
        super().__init__(text)
        self.errno = code
        self.filename = _os.fspath(path)
        self.note = note
        self.verb = verb
        self.hint = hint

    def __str__(self) -> str:
        return str(self.args[0])

    def with_note(self, note: str, hint: str | None = None) -> WriteError:
        """The same failure, saying what was kept or lost (``note``) and what to do (``hint``:
        the remedy of the cause, which the caller may extend, e.g. with a resume command)."""
        return WriteError(self.filename, self.errno, note, self.verb, hint)

    @property
    def remedy(self) -> str:
        """What to do about the cause (free space, another folder, ...), without the note."""
        return WRITE_ERRNOS.get(self.errno, ("", "check the disk"))[1]


def write_errno(exc: BaseException | None) -> int | None:
    """The errno of a full / read-only / forbidden / size-limited write behind ``exc``, or None.

    Looks through the chain of causes, since libraries wrap the ``OSError``: ``torch.save``
    raises a ``RuntimeError`` whose context is the file object's ``OSError``, and HDF5 a
    ``RuntimeError`` that only says ``errno = 28`` in its text.
    """
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            return int(exc.errno)
        if isinstance(exc, RuntimeError):
            match = _ERRNO_IN_TEXT.search(str(exc))
            if match and int(match.group(1)) in WRITE_ERRNOS:
                return int(match.group(1))
        if exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            exc = None if exc.__suppress_context__ else exc.__context__
        seen += 1
    return None


def as_write_error(exc: BaseException, path: str | _os.PathLike[str], note: str = "") -> WriteError | None:
    """``exc`` as a :class:`WriteError` about ``path`` when it is a failed write, else None."""
    if isinstance(exc, WriteError):
        return exc.with_note(note) if note and not exc.note else exc
    code = write_errno(exc)
    if code is None:
        return None
    filename = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
    # a bare EACCES/EPERM may as well have come from reading an input
    verb = "access" if code in (_errno.EACCES, _errno.EPERM) else "write"
    return WriteError(filename or path, code, note, verb)


def raise_write_failure(exc: BaseException, path: str | _os.PathLike[str], note: str = "") -> None:
    """Raise ``exc`` as a :class:`WriteError` about ``path`` (a file being written) when it is a
    failed write; return when it is something else, for the caller to re-raise."""
    if isinstance(exc, WriteError):
        if note and not exc.note:
            raise exc.with_note(note) from exc
        return
    code = write_errno(exc)
    if code is not None:
        raise WriteError(path, code, note) from exc
