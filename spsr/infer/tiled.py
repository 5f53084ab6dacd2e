"""Tiled, batched inference whose result matches whole-image inference.

The image is covered by tiles of ``tile`` LR pixels on a grid with stride ``tile - overlap`` (the
last tile flush with the border). Each tile is run with ``overlap`` extra pixels of real context
on every side that has neighbours (discarded afterwards), and neighbouring tiles are blended with
linear ramps over the ``overlap`` band, so no seam is visible and the result is within a
fraction of a grey level of the untiled one. Tiles of equal shape are batched. On CUDA
out-of-memory the current tiles are split in half and processing continues from the same tile.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from spsr.archs import sr_of
from spsr.errors import ConfigError, NonFiniteOutputError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Region:
    """A tile: the LR area it contributes (y0:y1, x0:x1) and the context-padded area it reads."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.cy1 - self.cy0, self.cx1 - self.cx0)


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def plan_tiles(h: int, w: int, tile: int, overlap: int) -> list[Region]:
    """Cover an ``h × w`` LR image with tiles; see the module docstring."""
    stride = max(1, tile - overlap)
    regions = []
    for y in _starts(h, tile, stride):
        for x in _starts(w, tile, stride):
            y1, x1 = min(y + tile, h), min(x + tile, w)
            regions.append(Region(y, y1, x, x1, max(0, y - overlap), min(h, y1 + overlap),
                                  max(0, x - overlap), min(w, x1 + overlap)))
    return regions


def _ramp(length: int, band: int, ramp_start: bool, ramp_end: bool, device: torch.device) -> torch.Tensor:
    w = torch.ones(length, device=device)
    band = min(band, length // 2)
    if band > 0:
        ramp = torch.arange(1, band + 1, device=device, dtype=torch.float32) / (band + 1)
        if ramp_start:
            w[:band] = ramp
        if ramp_end:
            w[length - band:] = ramp.flip(0)
    return w


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The compute dtype for a precision name on a device (``auto``: bf16 where it is fast)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if precision == "fp16":
        if device.type != "cuda":
            raise ConfigError("fp16 runs only on CUDA; use --precision bf16 or fp32 on the CPU")
        return torch.float16
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("this GPU does not support bf16; use fp16 or fp32")
        return torch.bfloat16
    # auto
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


#: ``ONEDNN_MAX_CPU_ISA`` values (and their prefixes) under which oneDNN still has native bf16.
_BF16_ISAS = ("ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_FP16", "AVX10")


def _isa_allows_bf16() -> bool:
    """False when ``ONEDNN_MAX_CPU_ISA`` caps oneDNN below native bf16 (e.g. ``AVX2``, ``AVX512_CORE``)."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return not limit or limit.startswith(_BF16_ISAS)


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            return fh.read()
    except OSError:
        return ""


def _cpu_flags_have_bf16() -> bool:
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


#: ``ONEDNN_MAX_CPU_ISA`` values that keep oneDNN to AVX2 or below.
_AVX2_CLASS_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")


def cpu_is_avx2_class() -> bool:
    """True where oneDNN runs AVX2 (or older) kernels: no AVX-512 on the CPU, or capped by
    ``ONEDNN_MAX_CPU_ISA``. False where ``/proc/cpuinfo`` cannot be read."""
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in _AVX2_CLASS_ISAS:
        return True
    flags = _cpu_flags()
    return bool(flags) and "avx512f" not in flags


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 instructions (AVX512-BF16 / AMX), so autocast pays off,
    and ``ONEDNN_MAX_CPU_ISA`` does not keep oneDNN from using them."""
    return _cpu_flags_have_bf16() and _isa_allows_bf16()


def precision_reason(precision: str, device: torch.device) -> str:
    """Why ``resolve_precision`` picks what it picks, in a few words (for benchmarks and logs)."""
    if precision != "auto":
        return f"--precision {precision} asked for"
    if device.type == "cuda":
        return "CUDA: bf16 where the GPU supports it, else fp16"
    if device.type != "cpu":
        return f"{device.type}: fp32"
    if cpu_has_fast_bf16():
        return "the CPU has native bf16 (AVX512-BF16/AMX)"
    if _cpu_flags_have_bf16():
        return f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')} keeps oneDNN off its bf16 kernels"
    return "no native bf16 on this CPU (bf16 would be emulated, slower than fp32)"


@contextlib.contextmanager
def _ieee_fp32() -> Iterator[None]:
    """fp32 convolutions in full fp32 on CUDA: cuDNN uses TF32 (a 10-bit mantissa) by default,
    which would make ``fp32`` on a GPU differ from the CPU by more than a grey level."""
    before = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = before


class TiledUpscaler:
    """Run a generator over an image in tiles, batched, with blending.

    Args:
        model: a generator (plain or SPSR; only the SR image is used).
        scale: its upscaling factor.
        tile: tile size in LR pixels (0 disables tiling).
        overlap: context and blending band in LR pixels.
        batch: tiles per forward pass.
        device: where to run.
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` (fp16 only on CUDA; ``fp32`` on CUDA
            is IEEE fp32, with cuDNN's TF32 off).
        channels_last: use the channels-last memory format (faster convolutions on CPU and GPU).
    """

    def __init__(
        self,
        model: nn.Module,
        scale: int,
        tile: int = 256,
        overlap: int = 16,
        batch: int = 4,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        channels_last: bool = True,
    ) -> None:
        if tile < 0 or overlap < 0 or batch < 1:
            raise ConfigError("tile and overlap must be >= 0 and batch >= 1")
        if tile and overlap * 2 >= tile:
            raise ConfigError(f"overlap {overlap} is too large for tile {tile} (needs overlap < tile/2)")
        self.device = torch.device(device)
        self.scale = scale
        self.tile = tile
        self.overlap = overlap
        self.batch = batch
        self.dtype = resolve_precision(precision, self.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.dtype == torch.float32:
            return _ieee_fp32() if self.device.type == "cuda" else contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, memory_format=self.memory_format)
        with torch.inference_mode(), self._autocast():
            out = sr_of(self.model(x))
        return out.float()

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        """Upscale ``(3, H, W)`` or ``(N, 3, H, W)`` float in [0, 1]; returns the SR image clamped to [0, 1].

        Raises:
            NonFiniteOutputError: the model gave NaN or infinite values (never clamped into an image).
        """
        with torch.inference_mode():
            if img.dim() == 3:
                out = self._upscale_one(img)
            else:
                out = torch.stack([self._upscale_one(b) for b in img])
            if not bool(out.isfinite().all()):
                hint = " (try --precision fp32)" if self.dtype != torch.float32 else " (broken weights?)"
                raise NonFiniteOutputError(f"the model produced NaN or infinite values{hint}")
            return out.clamp_(0, 1)

    def _upscale_one(self, img: torch.Tensor) -> torch.Tensor:
        c, h, w = img.shape
        if self.tile == 0 or (h <= self.tile and w <= self.tile):
            return self._whole(img)
        s = self.scale
        acc = torch.zeros(c, h * s, w * s)
        weight = torch.zeros(1, h * s, w * s)
        pending = plan_tiles(h, w, self.tile, self.overlap)
        while pending:
            group = self._next_group(pending)
            outs = self._try_run(torch.stack([img[:, r.cy0:r.cy1, r.cx0:r.cx1] for r in group]))
            if outs is None:
                self._shrink(group, pending, h, w)
                continue
            for r, out in zip(group, outs):
                oy, ox = (r.y0 - r.cy0) * s, (r.x0 - r.cx0) * s
                core = out[:, oy:oy + (r.y1 - r.y0) * s, ox:ox + (r.x1 - r.x0) * s]
                wy = _ramp((r.y1 - r.y0) * s, self.overlap * s, r.y0 > 0, r.y1 < h, core.device)
                wx = _ramp((r.x1 - r.x0) * s, self.overlap * s, r.x0 > 0, r.x1 < w, core.device)
                win = wy[:, None] * wx[None, :]
                acc[:, r.y0 * s:r.y1 * s, r.x0 * s:r.x1 * s] += core * win
                weight[:, r.y0 * s:r.y1 * s, r.x0 * s:r.x1 * s] += win
        return acc.div_(weight)

    def _try_run(self, x: torch.Tensor) -> torch.Tensor | None:
        """``_run(x)`` on the CPU, or None after a CUDA out-of-memory (with the cache emptied).

        The cache is emptied after the ``except`` block: inside it, the exception's traceback
        still references the failed forward's frames and so its activations, which
        ``empty_cache`` could then not release.
        """
        try:
            return self._run(x).cpu()
        except torch.cuda.OutOfMemoryError:
            pass
        torch.cuda.empty_cache()
        return None

    def _whole(self, img: torch.Tensor) -> torch.Tensor:
        out = self._try_run(img.unsqueeze(0))
        if out is not None:
            return out[0]
        smaller = self.tile // 2
        if self.tile == 0 or smaller <= self.overlap * 2:
            raise torch.cuda.OutOfMemoryError(
                "out of memory upscaling the whole image"
                + (f" (tile {self.tile})" if self.tile else "; give a --tile")
            )
        self.tile = smaller
        return self._upscale_one(img)

    def _next_group(self, pending: list[Region]) -> list[Region]:
        shape = pending[0].input_shape
        group = [r for r in pending if r.input_shape == shape][: self.batch]
        for r in group:
            pending.remove(r)
        return group

    def _shrink(self, group: list[Region], pending: list[Region], h: int, w: int) -> None:
        """After an OOM: halve the tile (and batch) and re-plan only the failed tiles' areas."""
        if self.batch > 1:
            self.batch = max(1, self.batch // 2)
            pending[:0] = group
            return
        largest = max(max(r.y1 - r.y0, r.x1 - r.x0) for r in group)
        if largest > self.tile:
            new_tile = self.tile  # planned before an earlier halving: split to the current size
        else:
            new_tile = self.tile // 2
            if new_tile <= self.overlap * 2:
                raise torch.cuda.OutOfMemoryError(
                    f"out of memory even with tile {self.tile}; use a smaller --tile or the CPU"
                )
        self.tile = new_tile
        replaced: list[Region] = []
        for r in group:
            for sub in plan_tiles(r.y1 - r.y0, r.x1 - r.x0, new_tile, self.overlap):
                y0, y1, x0, x1 = r.y0 + sub.y0, r.y0 + sub.y1, r.x0 + sub.x0, r.x0 + sub.x1
                replaced.append(Region(y0, y1, x0, x1, max(0, y0 - self.overlap), min(h, y1 + self.overlap),
                                       max(0, x0 - self.overlap), min(w, x1 + self.overlap)))
        pending[:0] = replaced

