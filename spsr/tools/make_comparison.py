"""Make the built-in models' side-by-side comparison in docs/models.md (crops, ×4, one row per photo).

Each photo is degraded with the papers' MATLAB bicubic ×4, upscaled by bicubic and by each model
(fp32, tiled), and the same crop of every result is shown side by side with the HR crop, enlarged
with nearest-neighbour so single pixels stay visible. Photos are public-domain / CC0 images bundled
with scikit-image, none of them in the training data.

    python -m spsr.tools.make_comparison -o spsr/assets/figures/builtin_comparison.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage import data

from spsr.data.image_io import from_tensor, to_tensor, write_image
from spsr.infer import TiledUpscaler, load_model
from spsr.ops import bicubic_degrade, imresize_np

# (loader, HR region y0, y1, x0, x1 — kept whole multiples of 4 — and the crop shown, in HR pixels)
PHOTOS = {
    "astronaut": (data.astronaut, (0, 512, 0, 512), (40, 104, 180, 296)),
    "chelsea": (data.chelsea, (0, 300, 0, 448), (60, 124, 140, 256)),
    "coffee": (data.coffee, (0, 400, 0, 600), (40, 104, 300, 416)),
}


def upscale_all(hr: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The bicubic ×4 of hr's LR and every named model's ×4, as uint8 arrays of hr's size."""
    _, lr = bicubic_degrade(hr, 4)
    outputs = []
    for name in names:
        up = TiledUpscaler(load_model(name).model, 4, tile=256, precision="fp32")
        outputs.append(from_tensor(up(to_tensor(lr))))
    return np.clip(imresize_np(lr, 4), 0, 255).astype(np.uint8), outputs


def label(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with a white caption strip under it."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (tile.shape[1], 18), "white")
    ImageDraw.Draw(strip).text((4, 3), text, fill="black")
    return np.concatenate([tile, np.asarray(strip)], axis=0)


def comparison(names: Sequence[str], zoom: int = 2, gap: int = 4) -> np.ndarray:
    rows = []
    for photo, (load, (y0, y1, x0, x1), (cy0, cy1, cx0, cx1)) in PHOTOS.items():
        hr = np.ascontiguousarray(load()[y0:y1, x0:x1])
        bicubic, outputs = upscale_all(hr, names)
        tiles = []
        captions = [Path(n).stem if "/" in n else n for n in names]  # a file: its name
        for caption, image in [("bicubic", bicubic), *zip(captions, outputs, strict=True), (f"HR ({photo})", hr)]:
            crop = image[cy0:cy1, cx0:cx1].repeat(zoom, axis=0).repeat(zoom, axis=1)
            tiles.append(label(crop, caption))
            tiles.append(np.full((tiles[-1].shape[0], gap, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles[:-1], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--weights", action="append", help="models to compare (default: the built-in psnr)")
    args = parser.parse_args(argv)
    names = args.weights or ["psnr"]
    write_image(args.output, comparison(names))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
