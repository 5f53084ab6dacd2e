"""SPSRNet's ``fusion_block=False`` (the cheap fusion of the fast built-in models): no ``f_block``
keys, everything else the official layout; told apart from the keys alone; rebuilt from a weights
file; and a model converted from a full one starts close to it (the RRDB is a residual block)."""

from __future__ import annotations

import torch

from spsr.archs import ArchSpec, build_model
from spsr.checkpoints.io import detect_spec
from spsr.infer import load_model, save_weights
from spsr.tools.drop_fusion_block import drop_fusion_block, main

FULL = ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True})
CHEAP = ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True, "fusion_block": False})


def test_only_the_fusion_rrdb_keys_are_gone() -> None:
    full, cheap = build_model(FULL).state_dict(), build_model(CHEAP).state_dict()
    assert set(full) - set(cheap) == {k for k in full if k.startswith("f_block.")}
    assert set(cheap) <= set(full)
    assert all(cheap[k].shape == full[k].shape for k in cheap)


def test_the_keys_tell_the_cheap_fusion_and_the_file_keeps_it(tmp_path) -> None:
    model = build_model(CHEAP)
    found = detect_spec(model.state_dict(), 4)
    assert found.extra.get("fusion_block") is False and (found.nf, found.nb, found.gc) == (8, 2, 4)
    assert detect_spec(build_model(FULL).state_dict(), 4).extra.get("fusion_block", True)
    loaded = load_model(save_weights(tmp_path / "m.safetensors", model, CHEAP))
    assert loaded.spec.extra == CHEAP.extra
    assert not any(k.startswith("f_block.") for k in loaded.model.state_dict())


def test_a_converted_model_computes_the_full_one_without_its_fusion_rrdb() -> None:
    torch.manual_seed(0)
    full = build_model(FULL).eval()
    cheap = build_model(CHEAP).eval()
    for p in full.f_block.parameters():  # an RRDB with zero weights passes on 1.2·x
        torch.nn.init.zeros_(p)
    cheap.load_state_dict(drop_fusion_block(full.state_dict()))
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.allclose(cheap(x).sr, full(x).sr, atol=1e-6)


def test_the_tool_converts_a_weights_file_and_refuses_what_it_cannot(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    src = save_weights(tmp_path / "full.safetensors", build_model(FULL), FULL)
    assert main([str(src), "-o", str(tmp_path / "cheap.safetensors")]) == 0
    loaded = load_model(tmp_path / "cheap.safetensors")
    assert loaded.spec.extra == CHEAP.extra
    again = main([str(tmp_path / "cheap.safetensors"), "-o", str(tmp_path / "x.safetensors")])
    assert again == 2 and "no fusion RRDB" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
