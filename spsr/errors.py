"""Errors a user can cause. The CLI turns each into one line and a non-zero exit."""


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
