"""The built-in models that ship in the package (made by spsr/tools/train_default_models.sh): they
load by name, say how the pipeline made them, the PSNR-oriented one gains at least 1 dB PSNR-Y over
bicubic on Set5 and on Set14, and `default` is the one the docs (docs/models.md) say it is."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from spsr.data.image_io import from_tensor, read_rgb, to_tensor
from spsr.infer import BUILTIN_WEIGHTS, DEFAULT_WEIGHTS, TiledUpscaler, load_model, resolve_weights
from spsr.metrics import calculate_psnr, calculate_ssim
from spsr.metrics.conventions import resolve_protocol
from spsr.ops import bicubic_degrade, imresize_np

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(BUILTIN_WEIGHTS))
def test_builtin_weights_load_and_carry_the_pipelines_provenance(name: str) -> None:
    loaded = load_model(name)
    prov = loaded.metadata["provenance"]
    assert loaded.spec.arch == "spsr" and loaded.spec.scale == 4
    assert prov["name"] == name and prov["pipeline"].endswith("train_default_models.sh")
    assert prov["iterations"] > 0 and prov["train_seconds"] > 0 and prov["data"]
    assert all(stage["commands"] for stage in prov["stages"])  # every stage's command line
    assert prov["stages"][-1]["commands"][0].startswith("spsr ")
    assert {"Set5", "Set14"} <= set(prov["scores"])


def test_the_psnr_model_is_the_cheap_fusion_fine_tuned_from_the_full_one() -> None:
    loaded = load_model("psnr")
    assert loaded.spec.extra == {"fusion_block": False, "image_skip": True}
    prov = loaded.metadata["provenance"]
    # the full model, the fusion-free L1 fine-tune, then the fine-tune with the gradient losses
    assert [s["stage"] for s in prov["stages"]] == ["psnr", "psnr", "psnr"]
    assert "--nb 6" in prov["stages"][0]["commands"][0] and "--init" in prov["stages"][1]["commands"][0]
    last = prov["stages"][2]["commands"][0]
    assert "--init" in last and "loss.branch=0.05" in last and "loss.gradient_pixel=0.1" in last


def test_the_psnr_models_gradient_branch_predicts_the_hr_gradient_map() -> None:
    """#28 item 8: the branch was never asked for anything by L1 on the image alone, and its map
    was near zero; the shipped model's branch, trained with the branch loss, predicts M(HR) of a
    photo it was not trained on (scikit-image's coffee, a crop degraded ×4 with MATLAB bicubic)."""
    import torch
    from skimage import data

    from spsr.ops import gradient_map

    hr, lr = bicubic_degrade(data.coffee()[40:232, 80:336], 4)
    loaded = load_model("psnr")
    with torch.no_grad():
        out = loaded.model(to_tensor(lr)[None])
        target = gradient_map(to_tensor(hr)[None], 1)
    predicted = out.grad.float().clamp(0, 1)
    error = float((predicted - target).abs().mean())
    silent = float(target.abs().mean())  # the error of a branch whose map is all zeros
    # measured: 0.55 × the silent error and correlation 0.82 for the shipped model; the previous
    # (L1-only) model: 0.97 × and 0.10
    assert error < 0.7 * silent, (error, silent)
    corr = torch.corrcoef(torch.stack([predicted.flatten(), target.flatten()]))[0, 1]
    assert float(corr) > 0.7, float(corr)


def test_the_withdrawn_perceptual_name_says_why_in_one_line() -> None:
    from spsr.errors import CheckpointError

    with pytest.raises(CheckpointError, match="withdrawn") as err:
        load_model("perceptual")
    assert "\n" not in str(err.value) and "psnr" in str(err.value)


def test_default_is_the_model_the_readme_names() -> None:
    assert resolve_weights("default") == resolve_weights(DEFAULT_WEIGHTS)
    page = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    named = re.search(r"`default` is the `(\w+)` model", page)
    assert named is not None and named.group(1) == DEFAULT_WEIGHTS


@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
def test_the_psnr_model_gains_one_db_over_bicubic(dataset: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(f"{dataset.lower()}_hr")  # skips without ../shared
    loaded = load_model("psnr")
    prov = loaded.metadata["provenance"]
    # Weights bundled before eval recorded its protocol were scored with full-resolution SSIM.
    protocol = resolve_protocol(prov.get("scores_protocol", "basicsr"), 4)
    up = TiledUpscaler(loaded.model, 4, tile=256, precision="fp32")
    ours, bicubic, ssim = [], [], []
    for path in sorted(folder.glob("*.png")):
        hr, lr = bicubic_degrade(read_rgb(path), 4)
        sr = from_tensor(up(to_tensor(lr)))
        ours.append(calculate_psnr(sr, hr, crop_border=4))
        ssim.append(calculate_ssim(sr, hr, 4, downsample=protocol.ssim_downsample))
        bicubic.append(calculate_psnr(imresize_np(lr, 4), hr, crop_border=4))
    gain = float(np.mean(ours) - np.mean(bicubic))
    assert gain >= 1.0, (dataset, np.mean(ours), np.mean(bicubic))
    # The number recorded in the weights (by spsr eval in the pipeline) is the one measured here.
    recorded = prov["scores"][dataset]
    assert float(np.mean(ours)) == pytest.approx(recorded["psnr"], abs=0.01)
    assert float(np.mean(ssim)) == pytest.approx(recorded["ssim"], abs=0.001)


def test_the_samples_are_their_hr_crops_degraded_x4(tmp_path: Path) -> None:
    """``make_samples --hr`` writes the references of the bundled LR samples (what the README's
    gradient-map figure compares with): each sample is exactly its crop's MATLAB-bicubic ×4."""
    from spsr.tools.make_samples import OUT, main

    main(["--hr", str(tmp_path)])
    samples = sorted(OUT.glob("*.png"))
    assert [p.name for p in samples] == ["astronaut.png", "chelsea.png", "coffee.png"]
    for sample in samples:
        hr, lr = read_rgb(tmp_path / sample.name), read_rgb(sample)
        assert hr.shape[:2] == (4 * lr.shape[0], 4 * lr.shape[1])
        diff = np.abs(bicubic_degrade(hr, 4)[1].astype(int) - lr.astype(int))
        assert diff.max() <= 1 and diff.mean() < 0.01, (sample.name, diff.max(), diff.mean())  # rounding
