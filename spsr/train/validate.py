"""Validation during training, with the conventions ``spsr eval`` uses.

Each HR image is mod-cropped and degraded with the MATLAB bicubic (:func:`spsr.ops.bicubic_degrade`),
the LR image is super-resolved with tiled inference (:class:`spsr.infer.TiledUpscaler`, so large
images never run out of memory), the result is rounded to 8 bits and scored by the metric
registry's PSNR and SSIM (:class:`spsr.metrics.registry.MetricSuite`) under a scoring protocol
(``data.val_protocol``, default ``spsr``): the same numbers ``spsr eval --protocol`` reports for
the saved weights.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spsr.data.image_io import from_tensor, is_image_file, read_rgb, to_tensor
from spsr.errors import ConfigError
from spsr.metrics.conventions import DEFAULT_PROTOCOL
from spsr.ops import bicubic_degrade

#: What validation scores, through the metric registry as ``spsr eval`` does.
VALIDATION_METRICS = ("psnr", "ssim")


@dataclass
class ValImage:
    """One validation pair, 8-bit ``(H, W, 3)``: the mod-cropped HR and its bicubic LR."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


def load_val_folder(folder: str | os.PathLike[str], scale: int, limit: int = 0) -> list[ValImage]:
    """HR images of a folder (sorted by name, non-images ignored) with their MATLAB-bicubic LR.

    Args:
        folder: folder of HR images.
        scale: the model's scale.
        limit: keep the first ``limit`` images (0: all).

    Raises:
        ConfigError: the folder does not exist or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"validation folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if limit:
        files = files[:limit]
    if not files:
        raise ConfigError(f"no images in the validation folder {folder}")
    images = []
    for path in files:
        hr, lr = bicubic_degrade(read_rgb(path), scale)
        if min(lr.shape[:2]) < 1:
            raise ConfigError(f"validation image {path} is smaller than the scale {scale}")
        images.append(ValImage(path.stem, hr, lr))
    return images


def load_val_store(path: str | os.PathLike[str], limit: int = 0) -> list[ValImage]:
    """The whole held-out images of a patch store's ``val`` group (already bicubic-degraded)."""
    from spsr.data.dataset import ValImageDataset

    data = ValImageDataset(path)
    n = len(data) if not limit else min(limit, len(data))
    images = []
    for i in range(n):
        item = data[i]
        images.append(ValImage(str(item["name"]), from_tensor(item["hr"]), from_tensor(item["lr"])))
    return images


def evaluate_generator(
    model: nn.Module,
    images: list[ValImage],
    scale: int,
    device: torch.device | str = "cpu",
    tile: int = 128,
    precision: str = "auto",
    protocol: str = DEFAULT_PROTOCOL,
) -> dict[str, float | str]:
    """Mean PSNR / SSIM of a generator on validation pairs, under ``protocol`` at ``scale``.

    The model is copied first, so the training copy keeps its mode, memory format and device.

    Args:
        model: a generator (plain or SPSR).
        images: pairs from :func:`load_val_folder` or :func:`load_val_store`.
        scale: the model's scale.
        device: where to run inference.
        tile: tile size in LR pixels.
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16``.
        protocol: the scoring protocol (``spsr`` | ``basicsr``).

    Returns:
        ``{"psnr", "ssim", "protocol", "images", "seconds"}``.

    Raises:
        ConfigError: an unknown protocol, or an SR image of the wrong size.
    """
    from spsr.infer.session import eval_upscaler
    from spsr.metrics.registry import EvalSettings, MetricSuite

    suite = MetricSuite(EvalSettings.for_protocol(VALIDATION_METRICS, scale, protocol))
    conv = suite.settings.scoring
    t0 = time.monotonic()
    inner = getattr(model, "module", None)  # the model inside a DDP wrapper
    module = inner if isinstance(inner, nn.Module) else model
    frozen = copy.deepcopy(module).float()
    upscaler = eval_upscaler(frozen, scale, tile, device, precision)  # as spsr eval scores
    psnrs, ssims = [], []
    for image in images:
        sr = from_tensor(upscaler(to_tensor(image.lr)))
        if sr.shape != image.hr.shape:
            raise ConfigError(
                f"validation image {image.name}: SR {sr.shape} does not match HR {image.hr.shape}"
            )
        scores = suite.score(sr, image.hr)
        psnrs.append(float(scores["psnr"]))
        ssims.append(float(scores["ssim"]))
    del frozen, upscaler
    return {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "protocol": conv.label,
        "images": len(images),
        "seconds": round(time.monotonic() - t0, 3),
    }


def validation_pictures(
    model: nn.Module,
    images: list[ValImage],
    scale: int,
    device: torch.device | str = "cpu",
    count: int = 3,
    crop: int = 48,
) -> dict[str, np.ndarray]:
    """Pictures of fixed validation crops for a run monitor (TensorBoard, W&B).

    The same centre crop (``crop`` LR pixels, at most the image) of each of the first ``count``
    images, every time, so successive validations show the same place.

    Returns:
        ``val/<name>``: LR (nearest-upscaled) | SR | HR side by side; for SPSR generators also
        ``gradient/<name>``: M(LR)↑ | gradient branch | M(SR) | M(HR) on one scale
        (:func:`spsr.infer.gradmap.comparison_panel`). All ``(H, W, 3)`` uint8.
    """
    from spsr.infer.gradmap import comparison_panel

    inner = getattr(model, "module", None)  # the model inside a DDP wrapper
    module = inner if isinstance(inner, nn.Module) else model
    was_training = module.training
    module.eval()
    out: dict[str, np.ndarray] = {}
    try:
        with torch.no_grad():
            for image in images[:count]:
                h, w = image.lr.shape[:2]
                c = min(crop, h, w)
                top, left = (h - c) // 2, (w - c) // 2
                lr = image.lr[top:top + c, left:left + c]
                hr = image.hr[top * scale:(top + c) * scale, left * scale:(left + c) * scale]
                x = to_tensor(lr).unsqueeze(0).to(device)
                result = module(x)
                sr_t = getattr(result, "sr", result)[0].float().clamp(0, 1).cpu()
                sr = from_tensor(sr_t)
                up = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
                out[f"val/{image.name}"] = np.concatenate([up, sr, hr], axis=1)
                grad = getattr(result, "grad", None)
                if isinstance(grad, torch.Tensor):
                    out[f"gradient/{image.name}"] = comparison_panel(
                        to_tensor(lr), sr_t, grad[0].float().cpu(), scale, to_tensor(hr)
                    )
    finally:
        module.train(was_training)
    return out
