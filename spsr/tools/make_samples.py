"""Make the small LR sample photos that ship in ``spsr/assets/samples`` (quick start input).

Crops of public-domain / CC0 photos bundled with scikit-image (astronaut: NASA, public domain;
coffee: Rachel Michetti, CC0; chelsea: Stefan van der Walt, CC0), degraded ×4 with the MATLAB
bicubic the papers use.

    python -m spsr.tools.make_samples             # rewrite the bundled LR samples
    python -m spsr.tools.make_samples --hr hr/    # write their HR crops (the references) to hr/

The HR crops are what ``spsr gradmap ... --hr hr/`` and ``spsr eval`` compare the samples' ×4
outputs with (the README's gradient-map figure is made that way).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage import data

from spsr.data.image_io import write_image
from spsr.ops import bicubic_degrade

OUT = Path(__file__).resolve().parents[1] / "assets" / "samples"
CROPS = {
    "astronaut": (data.astronaut, (0, 0, 512, 512)),
    "coffee": (data.coffee, (0, 40, 400, 560)),
    "chelsea": (data.chelsea, (0, 0, 300, 451)),
}


def hr_crops() -> dict[str, np.ndarray]:
    """The HR crops the samples are made from, by sample name."""
    return {name: load()[y0:y1, x0:x1] for name, (load, (y0, x0, y1, x1)) in CROPS.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hr", type=Path, help="write the HR crops to this folder instead")
    args = parser.parse_args(argv)
    out = args.hr if args.hr is not None else OUT
    out.mkdir(parents=True, exist_ok=True)
    for name, crop in hr_crops().items():
        hr, lr = bicubic_degrade(crop, 4)  # hr: the crop cut to a multiple of 4, as the LR sees it
        image = hr if args.hr is not None else lr
        write_image(out / f"{name}.png", image)  # an LR input's ×4 output keeps the name
        print(f"{out / name}.png {image.shape}")


if __name__ == "__main__":
    main()
