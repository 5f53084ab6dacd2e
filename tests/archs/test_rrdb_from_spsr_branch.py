"""An SPSR-G initialisation hands a branch-less RRDBNet its SR branch (#28 item 4): the "w/o GB"
rows of TPAMI 2021 Table 2 and the U-Net follow-up's Table 2 are the SR branch alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from spsr.archs.families.rrdb import state_from_spsr_branch
from spsr.archs.spec import ArchSpec, build_model
from spsr.checkpoints.io import save_weights
from spsr.errors import CheckpointError
from spsr.train.init_from import load_init

SIZES = dict(scale=4, nf=8, nb=2, gc=4)


def _spsr(extra: dict[str, object] | None = None) -> tuple[torch.nn.Module, ArchSpec]:
    spec = ArchSpec("spsr", backbone="rrdb", taps=(1, 2), extra=dict(extra or {}), **SIZES)
    torch.manual_seed(0)
    model = build_model(spec)
    with torch.no_grad():  # every weight non-trivial, so a wrong copy shows
        for p in model.parameters():
            p.normal_(0, 0.1)
    return model.eval(), spec


def _rrdb_from(tmp_path: Path, source: torch.nn.Module, spec: ArchSpec,
               extra: dict[str, object] | None = None) -> torch.nn.Module:
    path = save_weights(tmp_path / "spsr.safetensors", source, spec)
    target = ArchSpec("rrdb", extra=dict(extra or {}), **SIZES)
    torch.manual_seed(1)
    rrdb = build_model(target)
    load_init(rrdb, target, path)
    return rrdb.eval()


def _branch_features(spsr: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The SR branch alone: SPSR-G's ``model`` (trunk, up-convs, shared HR conv + LReLU)."""
    return spsr.model.forward_features(x, ())[1]


@torch.no_grad()
def test_rrdbnet_from_spsr_g_is_its_sr_branch(tmp_path: Path) -> None:
    spsr, spec = _spsr()
    rrdb = _rrdb_from(tmp_path, spsr, spec)
    x = torch.rand(2, 3, 10, 12)
    features = _branch_features(spsr, x)
    layers = list(rrdb.model)
    assert torch.allclose(torch.nn.Sequential(*layers[:-1])(x), features, rtol=0, atol=1e-6)
    # The image conv: SPSR-G's own features-to-image conv, the fusion's last.
    last = layers[-1]
    assert torch.equal(last.weight, spsr.f_HR_conv1[0].weight)
    assert torch.equal(last.bias, spsr.f_HR_conv1[0].bias)
    expected = F.conv2d(features, last.weight, last.bias, padding=1)
    assert torch.allclose(rrdb(x), expected, atol=1e-6)
    # Every key of the branch, none of the gradient branch or fusion.
    mapped = state_from_spsr_branch(spsr.state_dict(), spec, ArchSpec("rrdb", **SIZES))
    assert set(mapped) == set(rrdb.state_dict())
    assert not any(k.startswith(("b_", "f_", "conv_w", "HR_conv")) for k in mapped)


@torch.no_grad()
def test_desubpixel_heads_carry_over_and_a_plain_branch_is_spread(tmp_path: Path) -> None:
    x = torch.rand(1, 3, 8, 8)
    spsr, spec = _spsr({"desubpixel_head": True})
    rrdb = _rrdb_from(tmp_path, spsr, spec, {"desubpixel_head": True})
    up = F.interpolate(x, scale_factor=4, mode="nearest")
    features = _branch_features(spsr, F.pixel_unshuffle(up, 4))
    last = list(rrdb.model)[-1]
    assert torch.allclose(rrdb(x), F.conv2d(features, last.weight, last.bias, padding=1), atol=1e-6)
    assert torch.equal(rrdb(up, upsampled=True), rrdb(x))
    # A plain SPSR-G into an RRDBNet with the head: the first conv spread over the s² positions
    # computes the plain branch on the nearest-upsampled input.
    plain, plain_spec = _spsr()
    headed = _rrdb_from(tmp_path, plain, plain_spec, {"desubpixel_head": True})
    features = _branch_features(plain, x)
    last = list(headed.model)[-1]
    assert torch.allclose(headed(x), F.conv2d(features, last.weight, last.bias, padding=1),
                          atol=1e-5)


def test_what_does_not_fit_is_refused(tmp_path: Path) -> None:
    spsr, spec = _spsr({"image_skip": True})
    with pytest.raises(CheckpointError, match="image_skip"):
        _rrdb_from(tmp_path, spsr, spec)
    headed, headed_spec = _spsr({"desubpixel_head": True})
    with pytest.raises(CheckpointError, match="desubpixel head and the RRDBNet not"):
        _rrdb_from(tmp_path, headed, headed_spec)
    with pytest.raises(ValueError, match="nb differs"):
        state_from_spsr_branch({}, headed_spec, ArchSpec("rrdb", scale=4, nf=8, nb=3, gc=4))
