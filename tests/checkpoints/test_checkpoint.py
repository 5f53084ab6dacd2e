"""Checkpoint round-trips for every layout we read, built without downloaded weights."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from spsr.archs import ArchSpec, RRDBNet, SPSRNet, build_model, sr_of
from spsr.checkpoints import detect_spec, load_model, save_weights
from spsr.errors import CheckpointError
from spsr.train.init_from import load_init

X = torch.rand(1, 3, 12, 10)


def _same_output(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    with torch.no_grad():
        return torch.allclose(sr_of(a.eval()(X)), sr_of(b(X)), atol=1e-6)


def test_default_spsr_matches_the_released_checkpoint_layout() -> None:
    sd = SPSRNet().state_dict()
    assert len(sd) == 884
    assert sum(v.numel() for k, v in sd.items() if not k.startswith("HR_conv0_new")) == pytest.approx(24.8e6, rel=0.01)
    for key, shape in {
        "model.0.weight": (64, 3, 3, 3),
        "model.1.sub.22.RDB3.conv5.0.weight": (64, 192, 3, 3),
        "model.1.sub.23.weight": (64, 64, 3, 3),
        "model.3.weight": (64, 64, 3, 3),
        "model.6.weight": (64, 64, 3, 3),
        "model.8.weight": (64, 64, 3, 3),
        "HR_conv0_new.0.weight": (64, 64, 3, 3),
        "HR_conv1_new.0.weight": (64, 64, 3, 3),
        "get_g_nopadding.weight_h": (1, 1, 3, 3),
        "b_fea_conv.0.weight": (64, 3, 3, 3),
        "b_block_4.RDB3.conv1.0.weight": (32, 128, 3, 3),
        "b_concat_1.0.weight": (64, 128, 3, 3),
        "b_module.8.weight": (64, 64, 3, 3),
        "conv_w.0.weight": (3, 64, 1, 1),
        "f_block.RDB1.conv5.0.weight": (128, 256, 3, 3),
        "f_HR_conv1.0.weight": (3, 64, 3, 3),
    }.items():
        assert tuple(sd[key].shape) == shape, key
    spec = detect_spec(sd)
    assert (spec.arch, spec.nf, spec.nb, spec.gc, spec.scale, spec.taps) == ("spsr", 64, 23, 32, 4, (5, 10, 15, 20))


@pytest.mark.parametrize(
    "spec",
    [
        ArchSpec("spsr", 4, nf=8, nb=2, gc=4),
        ArchSpec("spsr", 2, nf=12, nb=5, gc=6, taps=(1, 2, 4, 5)),
        ArchSpec("spsr", 3, nf=8, nb=3, gc=4),
        ArchSpec("spsr", 4, nf=8, nb=4, backbone="edsr"),
        ArchSpec("spsr", 2, nf=8, nb=4, backbone="srresnet"),
        ArchSpec("rrdb", 4, nf=8, nb=3, gc=4),
        ArchSpec("edsr", 3, nf=8, nb=2),
        ArchSpec("srresnet", 4, nf=8, nb=2),
    ],
    ids=lambda s: f"{s.arch}-{s.backbone}-x{s.scale}-nf{s.nf}-nb{s.nb}",
)
def test_safetensors_round_trip(tmp_path: Path, spec: ArchSpec) -> None:
    model = build_model(spec)
    path = save_weights(tmp_path / "w.safetensors", model, spec, {"command": "test"})
    loaded = load_model(path)
    assert loaded.spec == spec
    assert loaded.metadata["provenance"] == {"command": "test"}
    assert _same_output(model, loaded.model)


@pytest.mark.parametrize("nf,nb,scale", [(8, 2, 4), (16, 5, 2)])
def test_official_style_spsr_pth_loads_strictly(tmp_path: Path, nf: int, nb: int, scale: int) -> None:
    model = SPSRNet(nf=nf, nb=nb, gc=4, scale=scale)
    torch.save(model.state_dict(), tmp_path / "spsr.pth")
    loaded = load_model(tmp_path / "spsr.pth", expected_scale=scale)
    assert (loaded.spec.nf, loaded.spec.nb, loaded.spec.scale) == (nf, nb, scale)
    assert _same_output(model, loaded.model)


def _to_esrgan_repo(sd: dict[str, torch.Tensor], nb: int) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        if m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(\w+)", k):
            out[f"RRDB_trunk.{m[1]}.RDB{m[2]}.conv{m[3]}.{m[4]}"] = v
    names = {"model.0": "conv_first", f"model.1.sub.{nb}": "trunk_conv", "model.3": "upconv1",
             "model.6": "upconv2", "model.8": "HRconv", "model.10": "conv_last"}
    for old, new in names.items():
        out[f"{new}.weight"], out[f"{new}.bias"] = sd[f"{old}.weight"], sd[f"{old}.bias"]
    return out


def _to_basicsr(sd: dict[str, torch.Tensor], nb: int) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        if m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(\w+)", k):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = v
    names = {"model.0": "conv_first", f"model.1.sub.{nb}": "conv_body", "model.3": "conv_up1",
             "model.6": "conv_up2", "model.8": "conv_hr", "model.10": "conv_last"}
    for old, new in names.items():
        out[f"{new}.weight"], out[f"{new}.bias"] = sd[f"{old}.weight"], sd[f"{old}.bias"]
    return out


@pytest.mark.parametrize("layout", ["old", "esrgan_repo", "basicsr"])
@pytest.mark.parametrize("wrapper", ["plain", "params_ema", "state_dict", "model", "module_prefix"])
@pytest.mark.parametrize("nf,nb", [(8, 2), (12, 3)])
def test_esrgan_layouts_and_wrappers(tmp_path: Path, layout: str, wrapper: str, nf: int, nb: int) -> None:
    model = RRDBNet(nf=nf, nb=nb, gc=4)
    sd = model.state_dict()
    sd = {"old": sd, "esrgan_repo": _to_esrgan_repo(sd, nb), "basicsr": _to_basicsr(sd, nb)}[layout]
    if wrapper == "params_ema":
        decoy = {k: torch.zeros_like(v) for k, v in sd.items()}
        obj = {"params": decoy, "params_ema": sd}
    elif wrapper == "module_prefix":
        obj = {"state_dict": {f"module.{k}": v for k, v in sd.items()}}
    elif wrapper == "plain":
        obj = sd
    else:
        obj = {wrapper: sd, "epoch": 3}
    torch.save(obj, tmp_path / "esrgan.pth")
    loaded = load_model(tmp_path / "esrgan.pth")
    assert (loaded.spec.arch, loaded.spec.nf, loaded.spec.nb, loaded.spec.scale) == ("rrdb", nf, nb, 4)
    assert _same_output(model, loaded.model)


def test_rrdb_init_fills_the_sr_branch_only(tmp_path: Path) -> None:
    rrdb = RRDBNet(nf=8, nb=4, gc=4)
    torch.save({"params": rrdb.state_dict()}, tmp_path / "psnr.pth")
    spec = ArchSpec("spsr", 4, nf=8, nb=4, gc=4)
    model = build_model(spec)
    before = model.f_block.RDB1.conv1[0].weight.clone()
    keys = load_init(model, spec, tmp_path / "psnr.pth")
    assert keys and all(k.startswith("model.") for k in keys)
    assert torch.equal(model.model[0].weight, rrdb.model[0].weight)
    assert torch.equal(model.HR_conv0_new[0].weight, rrdb.model[8].weight)
    assert torch.equal(model.f_block.RDB1.conv1[0].weight, before)


def test_edsr_init_fills_spsr_edsr_branch(tmp_path: Path) -> None:
    src_spec = ArchSpec("edsr", 4, nf=8, nb=4)
    src = build_model(src_spec)
    save_weights(tmp_path / "edsr.safetensors", src, src_spec)
    spec = ArchSpec("spsr", 4, nf=8, nb=4, backbone="edsr")
    model = build_model(spec)
    load_init(model, spec, tmp_path / "edsr.safetensors")
    assert torch.equal(model.model.head[0].weight, src.head[0].weight)


def test_run_folder_and_missing_weights(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        load_model(run)
    (run / "model.safetensors").write_bytes(tiny_spsr_weights.read_bytes())
    assert load_model(run).spec.nf == 8
    with pytest.raises(CheckpointError, match="no such weights"):
        load_model(tmp_path / "nope.pth")


def test_truncated_file_is_one_clear_error(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    data = tiny_spsr_weights.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(tmp_path / "cut.safetensors")
    model = RRDBNet(nf=8, nb=2, gc=4)
    torch.save(model.state_dict(), tmp_path / "full.pth")
    raw = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model(tmp_path / "cut.pth")


class _Evil:
    def __reduce__(self):  # pragma: no cover - never unpickled
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    torch.save({"params": {"w": torch.zeros(1)}, "hook": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="refused or unreadable"):
        load_model(tmp_path / "evil.pth")


def test_unknown_layout_shape_mismatch_and_wrong_scale(tmp_path: Path) -> None:
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="unrecognised checkpoint layout"):
        load_model(tmp_path / "other.pth")

    spec = ArchSpec("spsr", 4, nf=8, nb=2, gc=4)
    model = build_model(spec)
    lying = ArchSpec("spsr", 4, nf=16, nb=2, gc=4)
    save_weights(tmp_path / "lying.safetensors", model, lying)
    with pytest.raises(CheckpointError, match="other shapes"):
        load_model(tmp_path / "lying.safetensors")

    sd = model.state_dict()
    sd.pop("f_concat.0.bias")
    torch.save(sd, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path / "missing.pth")

    save_weights(tmp_path / "x4.safetensors", model, spec)
    with pytest.raises(CheckpointError, match="x4, but x2"):
        load_model(tmp_path / "x4.safetensors", expected_scale=2)
