"""Tiled, batched inference whose result matches whole-image inference.

The tile plan and the blending windows are :mod:`spsr.lite.tiles`' (shared with the NumPy path
that runs converted models without PyTorch): tiles of ``tile`` LR pixels with ``overlap`` pixels
of real context, blended with linear ramps over the ``overlap`` band, so no seam is visible and
the result is within a fraction of a grey level of the untiled one. Tiles of equal shape are
batched. On CUDA out-of-memory the current tiles are split in half and processing continues from
the same tile (``total`` in ``on_tiles`` grows when it re-plans the remaining tiles).
"""

from __future__ import annotations

import torch
from torch import nn

from spsr.engines import (
    EngineUnavailable,
    NoteCallback,
    Runner,
    RunSpec,
    choose_engine,
    precision_name,
)
from spsr.engines.torch_engine import TorchRunner
from spsr.errors import ConfigError, NonFiniteOutputError
from spsr.infer.precision import resolve_precision
from spsr.lite.tiles import (
    Region,
    TileCallback,
    default_batch,
    divide_by_weights,
    next_group,
    plan_tiles,
    window,
)

__all__ = ["Region", "TileCallback", "TiledUpscaler", "plan_tiles", "resolve_precision"]


class TiledUpscaler:
    """Run a generator over an image in tiles, batched, with blending.

    Args:
        model: a generator (plain or SPSR; only the SR image is used).
        scale: its upscaling factor.
        tile: tile size in LR pixels (0 disables tiling).
        overlap: context and blending band in LR pixels.
        batch: tiles per forward pass (None: 1 on the CPU, 4 on a GPU,
            :func:`spsr.lite.tiles.default_batch`).
        device: where to run.
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` (fp16 only on CUDA; ``fp32`` on CUDA
            is IEEE fp32, with cuDNN's TF32 off).
        channels_last: use the channels-last memory format on GPUs (faster convolutions).
        engine: ``auto`` | ``torch`` | ``openvino`` | ``onnxruntime`` (:mod:`spsr.engines`); an
            engine that cannot run the model gives a note and PyTorch runs.
        on_note: receives one-line notes (engine fallbacks, first-run conversions, ``auto``'s
            measurement).
        cache_key: the weights' identity for the conversion cache (None: a digest of the model).
        engine_retune: with ``engine="auto"`` on a CPU without native bf16, measure the engines
            again instead of using the cached choice (:mod:`spsr.engines.autotune`); ignored
            elsewhere.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: int,
        tile: int = 256,
        overlap: int = 16,
        batch: int | None = None,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        channels_last: bool = True,
        engine: str = "torch",
        on_note: NoteCallback | None = None,
        cache_key: str | None = None,
        engine_retune: bool = False,
    ) -> None:
        if tile < 0 or overlap < 0 or (batch is not None and batch < 1):
            raise ConfigError("tile and overlap must be >= 0 and batch >= 1")
        if tile and overlap * 2 >= tile:
            raise ConfigError(f"overlap {overlap} is too large for tile {tile} (needs overlap < tile/2)")
        self.device = torch.device(device)
        self.scale = scale
        self.tile = tile
        self.overlap = overlap
        self.batch = batch if batch is not None else default_batch(self.device.type)
        self.dtype = resolve_precision(precision, self.device)
        self.channels_last = channels_last
        self.model = model.to(self.device).eval()
        self.cache_key = cache_key
        self.on_note = on_note
        self._with_gradient = False
        self._runners: dict[bool, Runner] = {}
        self._flops_per_pixel: float | None = None
        chosen, notes = choose_engine(engine, self.device, measure=lambda: self._measure_engine(engine_retune))
        self.engine = chosen.name
        for note in notes:
            self._note(note)

    def measured_tile(self) -> tuple[int, int, int, int]:
        """The tile ``auto`` measures: one tile of the tile size, at most
        :data:`~spsr.engines.autotune.MEASURED_SIDE` square (also for untiled runs), smaller for a
        model too heavy for it (:func:`~spsr.engines.autotune.measured_side`)."""
        from spsr.engines.autotune import flops_per_pixel, measured_side

        if self._flops_per_pixel is None:
            self._flops_per_pixel = flops_per_pixel(self.model)
        side = measured_side(self.tile, self._flops_per_pixel)
        return (1, 3, side, side)

    def _measure_engine(self, retune: bool) -> str:
        """``auto`` on a CPU without native bf16: the engine measured (or cached) fastest for this
        model at this tile size; the winner's prepared runner is kept when it was just measured."""
        from spsr.engines.autotune import tuned_engine
        from spsr.engines.cache import weights_digest

        if self.cache_key is None:  # once: the conversions and the choice key share it
            self.cache_key = weights_digest(self.model)
        choice = tuned_engine(self._spec(), self.measured_tile(), retune=retune, on_note=self.on_note,
                              channels_last=self.channels_last)
        if choice.runner is not None:
            self._runners[False] = choice.runner
        return choice.engine

    def _note(self, text: str) -> None:
        if self.on_note is not None:
            self.on_note(text)

    @property
    def precision(self) -> str:
        """The precision the engine computes in (``fp32``, ``bf16``...), as a user reads it."""
        runner = self._runners.get(False) or self._runners.get(True)
        if runner is not None:
            return runner.precision
        return "fp32" if self.engine == "onnxruntime" else precision_name(self.dtype)

    def describe(self) -> str:
        """``engine precision``, e.g. ``openvino bf16``."""
        return f"{self.engine} {self.precision}"

    def prepared_runner(self) -> Runner | None:
        """The runner of the SR image once it is prepared (after a first image), else None."""
        return self._runners.get(False)

    def _spec(self) -> RunSpec:
        return RunSpec(self.model, self._with_gradient, self.dtype, self.device, self.cache_key)

    def _torch_runner(self) -> Runner:
        return TorchRunner(self._spec(), self.channels_last)

    def _fall_back(self, why: str) -> Runner:
        self._note(f"engine {self.engine} cannot run this model: {why}; PyTorch runs")
        self.engine = "torch"
        self._runners.clear()
        runner = self._runners[self._with_gradient] = self._torch_runner()
        return runner

    def _runner(self) -> Runner:
        runner = self._runners.get(self._with_gradient)
        if runner is not None:
            return runner
        if self.engine == "torch":
            runner = self._torch_runner()
        else:
            from spsr.engines import get_engine

            try:
                runner = get_engine(self.engine).prepare(self._spec(), self.on_note)
            except EngineUnavailable as exc:
                return self._fall_back(str(exc))
        self._runners[self._with_gradient] = runner
        return runner

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        runner = self._runner()
        if runner.engine == "torch":
            return runner(x)
        try:  # an engine that cannot run a batch (a shape it fails to compile...) falls back
            return runner(x)
        except (EngineUnavailable, RuntimeError) as exc:
            return self._fall_back(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)(x)

    def with_gradient(
        self, img: torch.Tensor, on_tiles: TileCallback | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Upscale one ``(3, H, W)`` image with an SPSR model: the SR image (clamped to [0, 1], as
        :meth:`__call__`) and the gradient branch's output (as the model gives it), both tiled,
        so memory is bounded by the tile as for the SR image alone.

        Raises:
            ConfigError: the model has no gradient branch.
            NonFiniteOutputError: NaN or infinite values.
        """
        self._with_gradient = True
        try:
            with torch.inference_mode():
                both = self._upscale_one(img, on_tiles)
                if not bool(both.isfinite().all()):
                    raise NonFiniteOutputError("the model produced NaN or infinite values")
                c = img.shape[0]
                return both[:c].clamp_(0, 1), both[c:]
        finally:
            self._with_gradient = False

    def __call__(self, img: torch.Tensor, on_tiles: TileCallback | None = None) -> torch.Tensor:
        """Upscale ``(3, H, W)`` or ``(N, 3, H, W)`` float in [0, 1]; returns the SR image clamped to [0, 1].

        ``on_tiles(done, total)`` reports progress within an image (an untiled image is one tile).

        Raises:
            NonFiniteOutputError: the model gave NaN or infinite values (never clamped into an image).
        """
        with torch.inference_mode():
            if img.dim() == 3:
                out = self._upscale_one(img, on_tiles)
            else:
                out = torch.stack([self._upscale_one(b, on_tiles) for b in img])
            if not bool(out.isfinite().all()):
                hint = " (try --precision fp32)" if self.dtype != torch.float32 else " (broken weights?)"
                raise NonFiniteOutputError(f"the model produced NaN or infinite values{hint}")
            return out.clamp_(0, 1)

    def _upscale_one(self, img: torch.Tensor, on_tiles: TileCallback | None = None) -> torch.Tensor:
        from spsr.engines.torch_fast.winograd import release_scratch

        try:
            return self._upscale_tiles(img, on_tiles)
        finally:
            release_scratch()  # the Winograd buffers live for one image, not for the process

    def _upscale_tiles(self, img: torch.Tensor, on_tiles: TileCallback | None = None) -> torch.Tensor:
        c, h, w = img.shape
        if self.tile == 0 or (h <= self.tile and w <= self.tile):
            return self._whole(img, on_tiles)
        s = self.scale
        acc = torch.zeros(c * (2 if self._with_gradient else 1), h * s, w * s)
        added: list[Region] = []
        pending = plan_tiles(h, w, self.tile, self.overlap)
        done = 0
        if on_tiles is not None:
            on_tiles(0, len(pending))
        while pending:
            group = next_group(pending, self.batch)
            outs = self._try_run(torch.stack([img[:, r.cy0:r.cy1, r.cx0:r.cx1] for r in group]))
            if outs is None:
                self._shrink(group, pending, h, w)
                continue
            done += len(group)
            if on_tiles is not None:
                on_tiles(done, done + len(pending))
            for r, out in zip(group, outs, strict=True):
                oy, ox = (r.y0 - r.cy0) * s, (r.x0 - r.cx0) * s
                core = out[:, oy:oy + (r.y1 - r.y0) * s, ox:ox + (r.x1 - r.x0) * s]
                win = torch.from_numpy(window(r, h, w, s, self.overlap))
                acc[:, r.y0 * s:r.y1 * s, r.x0 * s:r.x1 * s] += core * win
                added.append(r)
        divide_by_weights(acc.numpy(), added, h, w, s, self.overlap)  # in place, shares acc's memory
        return acc

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

    def _whole(self, img: torch.Tensor, on_tiles: TileCallback | None = None) -> torch.Tensor:
        if on_tiles is not None:
            on_tiles(0, 1)
        out = self._try_run(img.unsqueeze(0))
        if out is not None:
            if on_tiles is not None:
                on_tiles(1, 1)
            return out[0]
        smaller = self.tile // 2
        if self.tile == 0 or smaller <= self.overlap * 2:
            raise torch.cuda.OutOfMemoryError(
                "out of memory upscaling the whole image"
                + (f" (tile {self.tile})" if self.tile else "; give a --tile")
            )
        self.tile = smaller
        return self._upscale_one(img, on_tiles)

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

