"""The reference engine: the PyTorch model itself (CPU fast kernels, CUDA autocast, channels-last)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from spsr.archs import SROutput, sr_of
from spsr.engines.base import Engine, NoteCallback, Runner, RunSpec, precision_name
from spsr.errors import ConfigError


@contextlib.contextmanager
def ieee_fp32() -> Iterator[None]:
    """fp32 convolutions in full fp32 on CUDA: cuDNN uses TF32 (a 10-bit mantissa) by default,
    which would make ``fp32`` on a GPU differ from the CPU by more than a grey level."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


def stacked_output(raw: torch.Tensor | SROutput, with_gradient: bool) -> torch.Tensor:
    """The SR image, or the SR image and the gradient branch's output stacked on the channels.

    Raises:
        ConfigError: ``with_gradient`` for a model without a gradient branch.
    """
    if not with_gradient:
        return sr_of(raw)
    if not isinstance(raw, SROutput):
        raise ConfigError("this model has no gradient branch (an SPSR model has one)")
    return torch.cat([raw.sr, raw.grad], dim=1)


class TorchRunner(Runner):
    """The model run by PyTorch in ``spec.dtype`` (autocast for bf16/fp16, IEEE fp32 on CUDA)."""

    engine = "torch"

    def __init__(self, spec: RunSpec, channels_last: bool = True) -> None:
        self.spec = spec
        self.precision = precision_name(spec.dtype)
        # Inputs (and so activations) channels-last on every device; the weights only on GPUs:
        # cuDNN reads channels-last weights directly, while oneDNN on the CPU reorders the weights
        # into its own blocked layout on every call whatever their format (measured equal speed),
        # so there the 100 MB copy of the full SPSR-G (~0.1 s a process) is skipped.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = spec.model.to(spec.device).eval()
        if spec.device.type == "cpu":  # spsr's fused/Winograd kernels where they apply
            from spsr.engines.torch_fast import accelerate

            accelerate(self.model)
        if channels_last and spec.device.type != "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.spec.dtype == torch.float32:
            return ieee_fp32() if self.spec.device.type == "cuda" else contextlib.nullcontext()
        return torch.autocast(self.spec.device.type, dtype=self.spec.dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.spec.device, memory_format=self.memory_format)
        with torch.inference_mode(), self._autocast():
            out = stacked_output(self.model(x), self.spec.with_gradient)
        return out.float()


class TorchEngine(Engine):
    """PyTorch: always available, the reference for every other engine and the one for CUDA."""

    name = "torch"

    def unavailable_reason(self, device: torch.device) -> str | None:
        return None

    def version(self) -> str:
        return torch.__version__

    def prepare(self, spec: RunSpec, on_note: NoteCallback | None = None) -> Runner:
        return TorchRunner(spec)
