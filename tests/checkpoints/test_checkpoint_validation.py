"""Checkpoints spsr did not write, or wrote and someone changed: one clear error, never a traceback,
a giant allocation or a silently wrong picture. And the CLI side: ``--model-scale`` and warnings."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import _upstream_layouts as up
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from spsr.archs import ArchSpec, build_model
from spsr.archs.blocks import tap_points
from spsr.checkpoints import load_model, save_weights
from spsr.data.image_io import read_rgb, write_image
from spsr.errors import CheckpointError, NonFiniteOutputError
from spsr.infer import TiledUpscaler
from spsr.train.init_from import load_init
from spsr_cli.app import app

runner = CliRunner()
TINY = ArchSpec("spsr", 4, nf=8, nb=2, gc=4)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _safetensors(path: Path, state: dict[str, torch.Tensor], arch: object, version: str = "1") -> Path:
    from safetensors.torch import save_file

    arch_text = arch if isinstance(arch, str) else json.dumps(arch)
    save_file(state, str(path), metadata={"format": "spsr-weights", "format_version": version, "arch": arch_text})
    return path


@pytest.mark.parametrize(
    "drop", ["tail.1.weight", "upsample.0.weight", "b_fea_conv.0.weight", "f_block.RDB1.conv1.0.weight"]
)
def test_partial_foreign_checkpoints_are_one_clear_error(tmp_path: Path, drop: str) -> None:
    if drop.startswith("tail"):
        sd = up.edsr_pytorch_state(8, 1, 2)
    elif drop.startswith("upsample"):
        sd = {k.replace("upconv1", "upsample.0"): v for k, v in up.msrresnet_state(8, 1, 2).items()}
    else:
        sd = build_model(TINY).state_dict()
    sd.pop(drop)
    torch.save(sd, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path / "partial.pth")
    assert "\n" not in str(info.value) and (drop in str(info.value) or "missing" in str(info.value))


def test_a_1d_tensor_where_a_conv_belongs_is_refused_in_load_init(tmp_path: Path) -> None:
    sd = up.edsr_pytorch_state(8, 1, 4)
    sd["head.0.weight"] = torch.zeros(8)
    torch.save(sd, tmp_path / "flat.pth")
    spec = ArchSpec("spsr", 4, nf=8, nb=1, backbone="edsr")
    with pytest.raises(CheckpointError, match="not that of a convolution"):
        load_init(build_model(spec), spec, tmp_path / "flat.pth")


@pytest.mark.parametrize("arch,message", [
    ("{not json", "broken architecture metadata"),
    ({"arch": "spsr", "nf": "64"}, "nf must be an integer"),
    ({"arch": "spsr", "extra": {"turbo": True}}, "unknown option 'turbo'"),
    ({"arch": "spsr", "colour": 1}, "unknown architecture fields: colour"),
    ({"arch": "vdsr"}, "unknown architecture 'vdsr'"),
    ({"arch": "spsr", "scale": 5}, "unsupported scale 5"),
    ({"arch": "spsr", "nb": 100000}, "outside 1..1024"),
    ({"arch": "spsr", "nb": 4, "taps": [1, 9]}, r"tap points \(1, 9\) must lie in 1..4"),
    ({"arch": "spsr", "extra": {"image_skip": True, "desubpixel_head": True}}, "cannot be combined"),
    ({"arch": "rrdb", "scale": 4, "extra": {"pixel_unshuffle": True}}, "x1 or x2"),
    (["spsr"], "must be a table"),
])
def test_metadata_not_written_by_spsr_is_refused(tmp_path: Path, arch: object, message: str) -> None:
    path = _safetensors(tmp_path / "odd.safetensors", {"x": torch.zeros(1)}, arch)
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_spsr_with_the_desubpixel_head_is_detected_without_metadata(tmp_path: Path) -> None:
    spec = ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"desubpixel_head": True})
    model = build_model(spec).eval()
    torch.save({"params": model.state_dict()}, tmp_path / "u.pth")
    loaded = load_model(tmp_path / "u.pth")
    assert loaded.spec == dataclasses.replace(spec, taps=tap_points(2))
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(loaded.model(x).sr, model(x).sr)


def test_a_tiny_file_asking_for_a_giant_network_is_refused_before_building(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "giant.safetensors", {"x": torch.zeros(1)},
                        {"arch": "rrdb", "nf": 2048, "nb": 60, "gc": 1024})
    assert path.stat().st_size < 400
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"M parameters \(limit 200 M\)"):
        load_model(path)
    assert time.perf_counter() - start < 60  # generous: nothing was allocated
    # below the quick bound, the exact count comes from shapes only (the meta device)
    path = _safetensors(tmp_path / "wide.safetensors", {"x": torch.zeros(1)},
                        {"arch": "spsr", "nf": 1024, "nb": 10, "gc": 1024})
    with pytest.raises(CheckpointError, match=r"would have \d+ M parameters \(limit 200 M\)"):
        load_model(path)


def test_metadata_whose_tensors_do_not_fit_is_refused_before_building(tmp_path: Path) -> None:
    spec = ArchSpec("rrdb", 4, nf=8, nb=1, gc=4)
    state = build_model(spec).state_dict()
    path = _safetensors(tmp_path / "lie.safetensors", {k: v.contiguous() for k, v in state.items()},
                        dict(spec.to_dict(), nb=3))
    with pytest.raises(CheckpointError, match="missing"):
        load_model(path)
    with pytest.raises(CheckpointError, match="format version '9'"):
        load_model(_safetensors(tmp_path / "v9.safetensors", state, spec.to_dict(), version="9"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path: Path, bad: float) -> None:
    model = build_model(TINY)
    with torch.no_grad():
        model.f_HR_conv1[0].bias[1] = bad
    save_weights(tmp_path / "nan.safetensors", model, TINY)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_model(tmp_path / "nan.safetensors")
    torch.save(model.state_dict(), tmp_path / "nan.pth")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_model(tmp_path / "nan.pth")


def test_non_finite_outputs_are_refused_not_clamped() -> None:
    model = build_model(ArchSpec("srresnet", 2, nf=8, nb=1)).eval()
    with torch.no_grad():
        model.conv_last.weight.fill_(3e38)
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite"):
        TiledUpscaler(model, 2, tile=0, precision="fp32")(torch.rand(3, 6, 6))


def test_builtin_weights_resaved_as_plain_pth_keep_their_image_skip(tmp_path: Path) -> None:
    builtin = load_model("psnr")
    if not builtin.spec.extra.get("image_skip"):
        pytest.skip("the installed psnr model has no image skip")
    torch.save(builtin.model.state_dict(), tmp_path / "psnr.pth")
    again = load_model(tmp_path / "psnr.pth")
    assert again.spec == builtin.spec
    assert any("built-in 'psnr'" in w for w in again.warnings)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(again.model(x).sr, builtin.model(x).sr)


def test_an_image_skip_model_without_metadata_is_warned_about(tmp_path: Path) -> None:
    spec = ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True})
    model = build_model(spec)
    with torch.no_grad():  # a residual network whose residual is ~0: black without its image skip
        model.f_HR_conv1[0].weight.zero_()
        model.f_HR_conv1[0].bias.zero_()
    torch.save(model.state_dict(), tmp_path / "residual.pth")
    loaded = load_model(tmp_path / "residual.pth")
    assert any("nearly black" in w and "image_skip" in w for w in loaded.warnings)


# --------------------------------------------------------------------------- CLI


def _run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, _flat(result.output)


def test_upscale_old_esrgan_x3_with_model_scale_matches_upstream(tmp_path: Path) -> None:
    sd = up.rrdb_state("old", 8, 1, 4, 3, seed=5)
    torch.save(sd, tmp_path / "esrgan_x3.pth")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    code, out = _run("upscale", tmp_path / "in.png", tmp_path / "guess.png", "--weights", tmp_path / "esrgan_x3.pth",
                     "--tile", 0, "--precision", "fp32", "--device", "cpu")
    assert code == 0 and "--model-scale 3" in out  # the guess is said, naming the option
    assert read_rgb(tmp_path / "guess.png").shape == (24, 20, 3)
    code, out = _run("upscale", tmp_path / "in.png", tmp_path / "x3.png", "--weights", tmp_path / "esrgan_x3.pth",
                     "--model-scale", 3, "--tile", 0, "--precision", "fp32", "--device", "cpu", "--quiet")
    assert code == 0 and "warning" not in out
    ours = read_rgb(tmp_path / "x3.png").astype(int)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    ref = up.rrdb_forward(sd, "old", 1, 3, x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert ours.shape == (36, 30, 3)
    assert np.abs(ours - np.round(ref * 255)).max() <= 1


def test_upscale_edsr_pytorch_matches_upstream_within_one_level(tmp_path: Path) -> None:
    sd = up.edsr_pytorch_state(8, 2, 2, seed=2)
    torch.save(sd, tmp_path / "edsr_x2.pt")
    image = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    code, out = _run("upscale", tmp_path / "in.png", tmp_path / "out.png", "--weights", tmp_path / "edsr_x2.pt",
                     "--tile", 0, "--precision", "fp32", "--device", "cpu")
    assert code == 0 and "res_scale" in out
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    ref = up.edsr_pytorch_forward(sd, 2, 2, 1.0, x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(read_rgb(tmp_path / "out.png").astype(int) - np.round(ref * 255)).max() <= 1


def test_cli_model_scale_conflicts_are_one_line(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    code, out = _run("upscale", tmp_path / "in.png", tmp_path / "o.png", "--weights", tiny_spsr_weights,
                     "--model-scale", 2, "--device", "cpu")
    assert code == 1 and "x4, but x2 was asked for" in out and "Traceback" not in out
    code, out = _run("gradmap", tmp_path / "in.png", tmp_path / "g.png", "--model-scale", 2)
    assert code == 1 and "--weights" in out
    code, out = _run("eval", tmp_path, "--weights", tiny_spsr_weights, "--scale", 4, "--model-scale", 2)
    assert code == 1 and "--model-scale 2 differs from --scale 4" in out


def test_finiteness_check_names_the_bad_tensor_across_dtypes() -> None:
    from spsr.checkpoints.io import check_finite

    state = {"a": torch.ones(3, dtype=torch.float16), "b": torch.full((2,), 1e300, dtype=torch.float64),
             "c": torch.arange(4), "d": torch.zeros(0)}
    check_finite(state, "w")  # finite in its own dtype (1e300 would be inf as float32): accepted
    state["e"] = torch.tensor([1.0, float("nan")], dtype=torch.float64)
    with pytest.raises(CheckpointError, match=r"w: 1 tensor\(s\) hold NaN or infinite values \(e\.g\. e\)"):
        check_finite(state, "w")


def test_finiteness_sums_do_not_refuse_large_finite_weights() -> None:
    """The check sums each tensor in fp64: values whose fp32 sum would overflow are still accepted,
    and an fp64 sum that does overflow falls back to the exact per-value test."""
    from spsr.checkpoints.io import check_finite

    check_finite({"w": torch.full((1000,), 3e38, dtype=torch.float32)}, "w")
    check_finite({"w": torch.full((10,), 1.7e308, dtype=torch.float64)}, "w")  # fp64 sum is inf
    for bad in (float("inf"), float("-inf"), float("nan")):
        state = {"ok": torch.ones(4), "w": torch.tensor([1.0, bad, -1.0], dtype=torch.bfloat16)}
        with pytest.raises(CheckpointError, match=r"\(e\.g\. w\)"):
            check_finite(state, "w")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_loaded_model_is_the_meta_ghost_given_the_file_tensors(tmp_path: Path, suffix: str) -> None:
    """load_model builds no second network: the checked meta network takes the file's tensors.
    Its parameters are real fp32 tensors equal to a plain build + load_state_dict, frozen."""
    torch.manual_seed(3)
    model = build_model(TINY).eval()
    path = tmp_path / f"w{suffix}"
    if suffix == ".pth":
        torch.save({k: v.half() for k, v in model.state_dict().items()}, path)  # fp16 file: becomes fp32
    else:
        save_weights(path, model, TINY)
    loaded = load_model(path).model
    tensors = [*loaded.parameters(), *loaded.buffers()]
    assert all(not t.is_meta and t.dtype == torch.float32 and t.is_contiguous() for t in tensors)
    assert not any(p.requires_grad for p in loaded.parameters())
    tol = 1e-3 if suffix == ".pth" else 0.0
    for (k, a), (k2, b) in zip(loaded.state_dict().items(), model.state_dict().items(), strict=True):
        assert k == k2 and torch.allclose(a, b, atol=tol, rtol=tol), k
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(loaded(x).sr, model(x).sr, atol=1e-2 if tol else 1e-6)


def test_a_network_with_private_buffers_is_built_and_loaded_the_usual_way() -> None:
    from spsr.checkpoints.io import materialize

    with torch.device("meta"):
        ghost = torch.nn.Conv2d(2, 2, 3)
        ghost.register_buffer("scratch", torch.zeros(2), persistent=False)
    state = {"weight": torch.ones(2, 2, 3, 3), "bias": torch.zeros(2)}
    assert materialize(ghost, state) is None  # the buffer is not in the file: a real build fills it
    with torch.device("meta"):
        plain = torch.nn.Conv2d(2, 2, 3)
    real = materialize(plain, state)
    assert real is not None and torch.equal(real.weight, state["weight"]) and not real.weight.is_meta
