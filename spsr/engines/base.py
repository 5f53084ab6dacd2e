"""What every inference engine provides: availability, a version, and a runner for a model.

An :class:`Engine` turns a PyTorch generator into a :class:`Runner`, a callable that takes a
batch of LR tiles ``(N, 3, h, w)`` float32 in [0, 1] and returns the network's output for them
(the SR image, or the SR image and the gradient branch's output stacked on the channels) as a
float32 CPU tensor. The tiled upscaler (:class:`spsr.infer.TiledUpscaler`) cuts, batches and
blends the tiles; the engine only runs them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from spsr.errors import SpsrError

NoteCallback = Callable[[str], None]
"""Receives one-line notes for the user (a fallback, a first-run conversion); the library never prints."""


class EngineUnavailable(SpsrError):
    """The engine cannot be imported or cannot run this model; the message says why in one line."""


@dataclass(frozen=True)
class RunSpec:
    """What a runner is asked to run.

    Attributes:
        model: the generator, in eval mode.
        with_gradient: also return the gradient branch's output (SPSR models), stacked after the
            SR image's channels.
        dtype: the compute precision :func:`spsr.infer.precision.resolve_precision` chose.
        device: where PyTorch would run the model.
        cache_key: identifies the weights for the conversion cache (see :mod:`spsr.engines.cache`);
            None computes it from the model's tensors.
    """

    model: nn.Module
    with_gradient: bool
    dtype: torch.dtype
    device: torch.device
    cache_key: str | None = None


class Runner(abc.ABC):
    """A model prepared by an engine; call it on a batch of tiles."""

    #: The engine's name (``torch``, ``openvino``, ``onnxruntime``).
    engine: str = ""
    #: The precision it computes in, as a user reads it (``fp32``, ``bf16``, ``fp16``).
    precision: str = "fp32"
    #: The converted file it runs (``model.xml``, ``model.onnx``); None for PyTorch.
    source_file: Path | None = None
    #: The threads it runs with (None: the engine's default).
    threads: int | None = None

    @abc.abstractmethod
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The output for ``x`` ``(N, 3, h, w)`` float32: ``(N, C, s·h, s·w)`` float32 on the CPU
        (on the model's device for the torch engine)."""


class Engine(abc.ABC):
    """An inference engine: a name, whether it can run here, and how it prepares a model."""

    name: str = ""
    #: The compute dtypes it runs a model in (``auto``'s measurement offers it only these).
    dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.bfloat16, torch.float16)

    @abc.abstractmethod
    def unavailable_reason(self, device: torch.device) -> str | None:
        """None when the engine can run on ``device``; else why not, in a few words."""

    @abc.abstractmethod
    def version(self) -> str:
        """The engine library's version (part of the conversion cache key)."""

    @abc.abstractmethod
    def prepare(self, spec: RunSpec, on_note: NoteCallback | None = None) -> Runner:
        """A runner for ``spec``, converting (or reusing a cached conversion of) the model.

        Raises:
            EngineUnavailable: the engine cannot run this model (the caller falls back to PyTorch).
            ConfigError: the request itself is wrong (e.g. a gradient output of a model without one).
        """


def precision_name(dtype: torch.dtype) -> str:
    """``fp32`` / ``bf16`` / ``fp16`` for a torch dtype."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))
