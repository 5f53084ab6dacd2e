"""Errors a user can cause. The CLI turns each into one line and a non-zero exit."""


class SpsrError(Exception):
    """Base class of every error that is the user's input, not a bug."""


class CheckpointError(SpsrError):
    """A weights file that cannot be read, has an unknown layout, or does not fit the model."""


class ImageReadError(SpsrError):
    """A file that is not an image or is corrupt."""


class DataStoreError(SpsrError):
    """An HDF5 patch store that is missing, broken, or of another format version."""


class MissingWeightsError(SpsrError):
    """Pretrained weights (VGG19, AlexNet, NRQM model, ...) that are not available offline."""


class ConfigError(SpsrError):
    """An invalid configuration value or combination of options."""


class NonFiniteOutputError(SpsrError, ValueError):
    """A model produced NaN or infinite values (broken weights, or fp16 overflow)."""
