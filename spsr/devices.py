"""Checking a user's ``--device`` before torch sees it."""

from __future__ import annotations

from spsr.errors import ConfigError

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(name: str, local_rank: int | None = None) -> str:
    """``auto`` → ``cuda`` when a GPU is available, else ``cpu``; other names checked, then returned.

    Args:
        name: what the user gave (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        local_rank: under ``torchrun``, the process's GPU: ``auto`` and a bare ``cuda`` become
            ``cuda:LOCAL_RANK``.

    Raises:
        ConfigError: an unknown device name, or one this machine does not have.
    """
    import torch

    name = name.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r}; use {DEVICE_HELP}") from None
    if device.type == "cpu":
        return name
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name} asked for, but no CUDA GPU is available; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is None and local_rank is not None:
            name, device = f"cuda:{local_rank}", torch.device(f"cuda:{local_rank}")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"--device {name}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
        return name
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"--device {name} asked for, but MPS is not available; use --device cpu")
        return name
    raise ConfigError(f"unsupported device {name!r}; use {DEVICE_HELP}")
