"""Make the small LR sample photos that ship in ``spsr/assets/samples`` (quick start input).

Crops of public-domain / CC0 photos bundled with scikit-image (astronaut: NASA, public domain;
coffee: Rachel Michetti, CC0; chelsea: Stefan van der Walt, CC0), degraded ×4 with the MATLAB
bicubic the papers use.

    python -m spsr.tools.make_samples
"""

from pathlib import Path

from skimage import data

from spsr.data.image_io import write_image
from spsr.ops import bicubic_degrade

OUT = Path(__file__).resolve().parents[1] / "assets" / "samples"
CROPS = {
    "astronaut": (data.astronaut, (0, 0, 512, 512)),
    "coffee": (data.coffee, (0, 40, 400, 560)),
    "chelsea": (data.chelsea, (0, 0, 300, 451)),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (load, (y0, x0, y1, x1)) in CROPS.items():
        hr = load()[y0:y1, x0:x1]
        _, lr = bicubic_degrade(hr, 4)
        write_image(OUT / f"{name}.png", lr)  # the LR input; its ×4 output keeps the name
        print(f"{name}.png {lr.shape}")


if __name__ == "__main__":
    main()
