"""Every upstream checkpoint layout, in every wrapper: detected, loaded, and equal to the upstream forward.

The upstream state dicts and forwards come from ``tests/_upstream_layouts.py`` (documented key names
and shapes, plain ``torch.nn.functional``), never from spsr's own modules.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import _upstream_layouts as up
import pytest
import torch

from spsr.archs import ArchSpec, build_model, sr_of
from spsr.archs.registry import arch_names, backbone_names, families, parameter_count
from spsr.checkpoints import load_model
from spsr.errors import CheckpointError
from spsr.train.config import ModelConfig
from spsr.train.init_from import load_init

torch.manual_seed(0)


def _x(h: int = 10, w: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _ours(loaded_model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return sr_of(loaded_model(x))


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> None:
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, atol=atol, rtol=1e-5)


# --------------------------------------------------------------------------- layouts × hyperparameters


RRDB_CASES = [
    # (layout, nf, nb, gc, scale)
    ("old", 8, 2, 4, 4), ("old", 12, 3, 16, 2), ("old", 8, 1, 4, 8),
    ("esrgan_repo", 8, 2, 4, 4), ("esrgan_repo", 10, 1, 16, 4),
    ("basicsr", 8, 2, 4, 4), ("basicsr", 8, 2, 16, 2), ("basicsr", 8, 1, 4, 1), ("basicsr", 12, 2, 8, 2),
]


@pytest.mark.parametrize("layout,nf,nb,gc,scale", RRDB_CASES)
def test_rrdbnet_layouts_match_the_upstream_forward(tmp_path: Path, layout: str, nf: int, nb: int, gc: int,
                                                   scale: int) -> None:
    sd = up.rrdb_state(layout, nf, nb, gc, scale)
    torch.save(sd, tmp_path / "rrdb.pth")
    loaded = load_model(tmp_path / "rrdb.pth")
    s = loaded.spec
    assert (s.arch, s.nf, s.nb, s.gc, s.scale) == ("rrdb", nf, nb, gc, scale)
    assert s.extra.get("pixel_unshuffle", False) == (layout == "basicsr" and scale in (1, 2))
    x = _x(8, 12)
    _close(_ours(loaded.model, x), up.rrdb_forward(sd, layout, nb, scale, x))
    if layout == "old" and scale == 2:  # one up-conv: x2 and x3 look alike
        assert len(loaded.warnings) == 1 and "--model-scale 3" in loaded.warnings[0]
    else:
        assert loaded.warnings == []


def test_pixel_unshuffle_rrdb_pads_odd_sizes_like_real_esrgan(tmp_path: Path) -> None:
    sd = up.rrdb_state("basicsr", 8, 1, 4, 2)
    torch.save({"params_ema": sd}, tmp_path / "x2plus.pth")
    model = load_model(tmp_path / "x2plus.pth").model
    x = _x(9, 7)
    padded = torch.nn.functional.pad(x, (0, 1, 0, 1), mode="reflect")
    out = _ours(model, x)
    assert out.shape[-2:] == (18, 14)
    _close(out, up.rrdb_forward(sd, "basicsr", 1, 2, padded)[..., :18, :14])


def test_old_esrgan_x3_needs_model_scale_and_warns_without_it(tmp_path: Path) -> None:
    sd = up.rrdb_state("old", 8, 2, 4, 3)
    torch.save(sd, tmp_path / "esrgan_x3.pth")
    guessed = load_model(tmp_path / "esrgan_x3.pth")
    assert guessed.spec.scale == 2
    assert len(guessed.warnings) == 1 and "--model-scale" in guessed.warnings[0]
    told = load_model(tmp_path / "esrgan_x3.pth", model_scale=3)
    assert told.spec.scale == 3 and told.warnings == []
    x = _x()
    _close(_ours(told.model, x), up.rrdb_forward(sd, "old", 2, 3, x))
    with pytest.raises(CheckpointError, match="but x4 was asked for"):
        load_model(tmp_path / "esrgan_x3.pth", model_scale=4)


@pytest.mark.parametrize("nf,nb,scale", [(8, 2, 4), (8, 1, 3), (16, 3, 2)])
def test_edsr_pytorch_matches_its_forward_mean_shift_and_rgb_range(tmp_path: Path, nf: int, nb: int,
                                                                  scale: int) -> None:
    sd = up.edsr_pytorch_state(nf, nb, scale)
    torch.save(sd, tmp_path / "edsr.pt")
    loaded = load_model(tmp_path / "edsr.pt")
    e = loaded.spec.extra
    assert (loaded.spec.arch, loaded.spec.nf, loaded.spec.nb, loaded.spec.scale) == ("edsr", nf, nb, scale)
    assert e["mean_shift"] and e["rgb_range"] == 255.0 and e["res_scale"] == 1.0
    assert any("res_scale" in w for w in loaded.warnings)  # not stored: reported as assumed
    x = _x()
    _close(_ours(loaded.model, x), up.edsr_pytorch_forward(sd, nb, scale, 1.0, x))


def test_edsr_pytorch_large_model_gets_res_scale_0_1(tmp_path: Path) -> None:
    sd = up.edsr_pytorch_state(256, 32, 2, seed=3)
    torch.save(sd, tmp_path / "edsr_x2.pt")
    loaded = load_model(tmp_path / "edsr_x2.pt")
    assert loaded.spec.extra["res_scale"] == 0.1
    x = _x(5, 4)
    _close(_ours(loaded.model, x), up.edsr_pytorch_forward(sd, 32, 2, 0.1, x), atol=2e-5)


def test_edsr_pytorch_stripped_of_its_mean_shift_is_warned_about(tmp_path: Path) -> None:
    sd = {k: v for k, v in up.edsr_pytorch_state(8, 1, 2).items() if "mean" not in k}
    torch.save(sd, tmp_path / "stripped.pt")
    loaded = load_model(tmp_path / "stripped.pt")
    assert any("sub_mean" in w for w in loaded.warnings)


@pytest.mark.parametrize("nf,nb,scale", [(8, 2, 4), (8, 1, 3), (12, 2, 2)])
@pytest.mark.parametrize("mean", [None, (0.5, 0.4, 0.3)])
def test_basicsr_edsr_matches_its_forward(tmp_path: Path, nf: int, nb: int, scale: int,
                                          mean: tuple[float, ...] | None) -> None:
    sd = up.basicsr_edsr_state(nf, nb, scale, mean=mean)
    torch.save({"params": sd}, tmp_path / "edsr.pth")
    loaded = load_model(tmp_path / "edsr.pth")
    assert (loaded.spec.nf, loaded.spec.nb, loaded.spec.scale) == (nf, nb, scale)
    assert any("img_range" in w for w in loaded.warnings)
    x = _x()
    _close(_ours(loaded.model, x), up.basicsr_edsr_forward(sd, nb, scale, 1.0, x))


@pytest.mark.parametrize("nf,nb,scale", [(8, 2, 4), (8, 2, 3), (12, 3, 2)])
def test_basicsr_msrresnet_matches_its_forward(tmp_path: Path, nf: int, nb: int, scale: int) -> None:
    sd = up.msrresnet_state(nf, nb, scale)
    torch.save({"params": sd}, tmp_path / "msrresnet.pth")
    loaded = load_model(tmp_path / "msrresnet.pth")
    assert (loaded.spec.arch, loaded.spec.nf, loaded.spec.nb, loaded.spec.scale) == ("srresnet", nf, nb, scale)
    assert loaded.warnings == []
    x = _x()
    _close(_ours(loaded.model, x), up.msrresnet_forward(sd, nb, scale, x))


# --------------------------------------------------------------------------- wrappers and serialisations


def _layout_cases() -> list[tuple[str, dict[str, torch.Tensor], object]]:
    x = _x()
    cases = []
    for layout in ("old", "esrgan_repo", "basicsr"):
        sd = up.rrdb_state(layout, 8, 1, 4, 4)
        cases.append((f"rrdb-{layout}", sd, up.rrdb_forward(sd, layout, 1, 4, x)))
    sd = up.rrdb_state("basicsr", 8, 1, 4, 2)
    cases.append(("rrdb-basicsr-x2plus", sd, up.rrdb_forward(sd, "basicsr", 1, 2, x)))
    sd = up.edsr_pytorch_state(8, 1, 4)
    cases.append(("edsr-pytorch", sd, up.edsr_pytorch_forward(sd, 1, 4, 1.0, x)))
    sd = up.basicsr_edsr_state(8, 1, 4)
    cases.append(("edsr-basicsr", sd, up.basicsr_edsr_forward(sd, 1, 4, 1.0, x)))
    sd = up.msrresnet_state(8, 1, 4)
    cases.append(("msrresnet", sd, up.msrresnet_forward(sd, 1, 4, x)))
    return cases


CASES = _layout_cases()


@pytest.mark.parametrize("wrapper", up.WRAPPERS)
@pytest.mark.parametrize("name,sd,expected", CASES, ids=[c[0] for c in CASES])
def test_every_layout_in_every_wrapper(
    tmp_path: Path, wrapper: str, name: str, sd: dict, expected: torch.Tensor
) -> None:
    path = tmp_path / "w.pth"
    up.save_wrapped(sd, str(path), wrapper)
    loaded = load_model(path)
    _close(_ours(loaded.model, _x()), expected)


def test_a_key_left_unused_is_refused(tmp_path: Path) -> None:
    sd = up.msrresnet_state(8, 1, 2)
    sd["conv_extra.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(sd, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"1 key.* this layout does not use"):
        load_model(tmp_path / "extra.pth")


# --------------------------------------------------------------------------- --init from upstream layouts


def _interior(t: torch.Tensor, margin: int) -> torch.Tensor:
    return t[..., margin:-margin, margin:-margin]


def test_edsr_pytorch_initialises_a_plain_edsr_in_unit_range(tmp_path: Path) -> None:
    """The mean shift and 0..255 range fold into the weights: exact away from the image border."""
    sd = up.edsr_pytorch_state(8, 1, 2)
    torch.save(sd, tmp_path / "edsr.pt")
    spec = ArchSpec("edsr", 2, nf=8, nb=1)
    model = build_model(spec).eval()
    notes: list[str] = []
    keys = load_init(model, spec, tmp_path / "edsr.pt", notes)
    assert "sub_mean.weight" not in keys and notes
    x = _x(20, 20)
    ref = up.edsr_pytorch_forward(sd, 1, 2, 1.0, x)
    _close(_interior(_ours(model, x), 12), _interior(ref, 12))


def test_edsr_res_scale_is_refitted_for_the_target(tmp_path: Path) -> None:
    sd = up.basicsr_edsr_state(8, 2, 2)  # assumed res_scale 1.0
    torch.save(sd, tmp_path / "edsr.pth")
    spec = ArchSpec("edsr", 2, nf=8, nb=2, extra={"res_scale": 0.1, "mean_shift": True, "rgb_range": 255})
    model = build_model(spec).eval()
    load_init(model, spec, tmp_path / "edsr.pth")
    x = _x()
    _close(_ours(model, x), up.basicsr_edsr_forward(sd, 2, 2, 1.0, x), atol=2e-5)


@pytest.mark.parametrize("source,backbone", [
    ("edsr-pytorch", "edsr"), ("edsr-basicsr", "edsr"), ("msrresnet", "srresnet"),
    ("rrdb-basicsr", "rrdb"), ("rrdb-esrgan_repo", "rrdb"),
])
def test_upstream_checkpoints_initialise_the_spsr_sr_branch(tmp_path: Path, source: str, backbone: str) -> None:
    sd = dict(next(c for c in CASES if c[0] == source)[1])
    torch.save({"params_ema": sd}, tmp_path / "init.pth")
    spec = ArchSpec("spsr", 4, nf=8, nb=1, gc=4, backbone=backbone)
    model = build_model(spec)
    before = model.f_block.RDB1.conv1[0].weight.clone()
    keys = load_init(model, spec, tmp_path / "init.pth")
    assert keys and all(k.startswith(("model.", "HR_conv0_new.")) for k in keys)
    assert torch.equal(model.f_block.RDB1.conv1[0].weight, before)
    plain_spec = ArchSpec(backbone, 4, nf=8, nb=1, gc=4)
    plain = build_model(plain_spec)
    load_init(plain, plain_spec, tmp_path / "init.pth")
    first = {"edsr": "head.0.weight", "srresnet": "conv_first.weight", "rrdb": "model.0.weight"}[backbone]
    assert torch.allclose(model.state_dict()[f"model.{first}" if backbone != "rrdb" else first],
                          plain.state_dict()[first])


# --------------------------------------------------------------------------- the registry itself


def test_registry_is_the_one_list_of_architectures() -> None:
    assert set(arch_names()) == set(families()) == {"spsr", "rrdb", "edsr", "srresnet"}
    assert set(backbone_names()) == {"rrdb", "edsr", "srresnet"}
    from spsr.archs import ARCHS
    from spsr.train import config

    assert arch_names() == ARCHS and arch_names() == config.ARCHS
    assert backbone_names() == config.GENERATOR_BACKBONES
    # the training section's fields are ArchSpec's (no mirror to keep in step by hand), besides
    # how training initialises the network, which is no property of the architecture
    spec_fields = {f.name for f in dataclasses.fields(ArchSpec)}
    assert {f.name for f in dataclasses.fields(ModelConfig)} - config.TRAINING_ONLY_MODEL_KEYS <= spec_fields


@pytest.mark.parametrize("spec", [
    ArchSpec("spsr", 4, nf=8, nb=2, gc=4), ArchSpec("rrdb", 2, nf=8, nb=2, gc=4, extra={"pixel_unshuffle": True}),
    ArchSpec("edsr", 3, nf=8, nb=2, extra={"mean_shift": True, "rgb_range": 255}), ArchSpec("srresnet", 4, nf=8, nb=2),
])
def test_parameter_count_without_building(spec: ArchSpec) -> None:
    assert parameter_count(spec) == sum(p.numel() for p in build_model(spec).parameters())


def test_spsr_written_files_are_read_by_metadata_not_guessed(tmp_path: Path) -> None:
    from spsr.infer import save_weights

    spec = ArchSpec("rrdb", 3, nf=8, nb=1, gc=4)  # x3 one up-conv: ambiguous from keys alone
    save_weights(tmp_path / "x3.safetensors", build_model(spec), spec)
    loaded = load_model(tmp_path / "x3.safetensors")
    assert loaded.spec == spec and loaded.warnings == [] and loaded.layout == "spsr"


def test_docs_table_lists_every_registered_layout() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text(encoding="utf-8")
    table = page[page.index("## Supported checkpoints"):]
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    for fam in families().values():
        for layout in fam.layouts:
            assert any(row.startswith(f"| {layout.project} | {layout.name} | `{fam.name}` |") for row in rows), layout
