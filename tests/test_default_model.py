"""The bundled default model: it loads, says where it came from, and beats bicubic on Set5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spsr.data.image_io import read_rgb
from spsr.infer import TiledUpscaler, load_model
from spsr.metrics import calculate_psnr
from spsr.ops import bicubic_degrade, imresize_np


def test_default_weights_carry_their_provenance() -> None:
    loaded = load_model("default")
    prov = loaded.metadata["provenance"]
    assert loaded.spec.arch == "spsr" and loaded.spec.scale == 4
    assert prov["iterations"] > 0 and prov["data"] and prov["command"]


def test_default_model_beats_bicubic_on_set5_psnr_y(set5_hr: Path) -> None:
    folder = set5_hr
    loaded = load_model("default")
    up = TiledUpscaler(loaded.model, 4, tile=128, precision="fp32")
    ours, bicubic = [], []
    for path in sorted(folder.glob("*.png")):
        hr, lr = bicubic_degrade(read_rgb(path), 4)
        sr = up(torch.from_numpy(lr).permute(2, 0, 1).float() / 255)
        sr8 = (sr * 255).round().byte().permute(1, 2, 0).numpy()
        ours.append(calculate_psnr(sr8, hr, crop_border=4))
        bicubic.append(calculate_psnr(imresize_np(lr, 4), hr, crop_border=4))
    assert np.mean(ours) > np.mean(bicubic) + 0.5, (np.mean(ours), np.mean(bicubic))
