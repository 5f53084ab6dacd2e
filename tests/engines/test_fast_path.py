"""The fused CPU inference path (spsr.engines.torch_fast, applied by the torch engine) against the
plain (official) forward, which the networks in spsr.archs run by themselves."""

from __future__ import annotations

import pytest
import torch

from spsr import cpu as cpu_mod
from spsr.archs import SPSRNet
from spsr.archs.blocks import RRDB, ResidualDenseBlock
from spsr.archs.rrdb_net import RRDBNet
from spsr.engines.torch_fast import accelerate
from spsr.engines.torch_fast import fused as fast
from spsr.infer import TiledUpscaler
from spsr.infer import precision as precision_mod
from spsr.infer import tiled as tiled_mod

needs_fused = pytest.mark.skipif(not fast.FUSED_OPS, reason="this PyTorch build has no fused oneDNN convolutions")


def _formats(model: torch.nn.Module, x: torch.Tensor, channels_last: bool) -> tuple[torch.nn.Module, torch.Tensor]:
    if channels_last:
        return model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    return model, x


@needs_fused
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("block", [ResidualDenseBlock, RRDB])
def test_fused_blocks_match_the_plain_forward(block: type, channels_last: bool) -> None:
    torch.manual_seed(0)
    model, x = _formats(accelerate(block(8, 4).eval()), torch.randn(2, 8, 13, 11), channels_last)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        assert fast.use_fused(x)
        with fast.plain_forward():
            assert not fast.use_fused(x)
            ref = model(x)
        out = model(x)
    assert out.shape == ref.shape
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert not torch.equal(out, x)  # the block did something
    for k, v in model.state_dict().items():  # weights are scaled into copies, never in place
        assert torch.equal(v, before[k]), k


@needs_fused
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_spsr_and_rrdbnet_match_the_plain_forward(channels_last: bool) -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 3, 12, 10)
    for model in (accelerate(SPSRNet(nf=8, nb=2, gc=4).eval()), accelerate(RRDBNet(nf=8, nb=2, gc=4).eval())):
        model, xx = _formats(model, x, channels_last)
        with torch.no_grad():
            with fast.plain_forward():
                ref = model(xx)
            out = model(xx)
        outs = out if isinstance(out, tuple) else [out]
        refs = ref if isinstance(ref, tuple) else [ref]
        for a, b in zip(outs, refs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@needs_fused
def test_upscaler_fp32_is_within_a_grey_level_of_the_plain_forward() -> None:
    torch.manual_seed(0)
    model = SPSRNet(nf=8, nb=2, gc=4).eval()
    x = torch.rand(3, 20, 18)
    with torch.no_grad(), fast.plain_forward():
        ref = model(x[None]).sr[0].clamp(0, 1)
    out = TiledUpscaler(model, 4, tile=0, precision="fp32")(x)
    assert float((out - ref).abs().max()) * 255 < 0.01


def test_training_takes_the_plain_path_and_its_gradients_are_unchanged() -> None:
    torch.manual_seed(0)
    model = accelerate(SPSRNet(nf=8, nb=2, gc=4)).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    assert not fast.use_fused(x)  # grad mode on

    def grads(plain: bool) -> list[torch.Tensor]:
        model.zero_grad()
        ctx = fast.plain_forward() if plain else torch.enable_grad()
        with ctx:
            out = model(x)
            (out.sr.square().mean() + out.grad.square().mean()).backward()
        return [p.grad.clone() for p in model.parameters()]

    reference = grads(plain=True)
    with torch.no_grad():
        model(x)  # an inference pass in between (e.g. validation) changes nothing
    for a, b in zip(grads(plain=False), reference, strict=True):
        assert torch.equal(a, b)


def test_fused_path_steps_aside_for_autocast_other_dtypes_and_missing_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.rand(1, 4, 5, 5)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not fast.use_fused(x)
        assert not fast.use_fused(x.double())
        monkeypatch.setenv("SPSR_PLAIN_FORWARD", "1")
        assert not fast.use_fused(x)
        monkeypatch.setenv("SPSR_PLAIN_FORWARD", "0")
        assert fast.use_fused(x) == fast.FUSED_OPS
        monkeypatch.setattr(fast, "FUSED_OPS", False)
        assert not fast.use_fused(x)
        torch.manual_seed(0)
        block = accelerate(RRDB(4, 4).eval())
        with fast.plain_forward():
            ref = block(x)
        assert torch.equal(block(x), ref)


def test_auto_precision_honours_an_isa_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(cpu_mod, "cpu_flags_have_bf16", lambda: True)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert tiled_mod.resolve_precision("auto", cpu) == torch.bfloat16
    assert "native bf16" in precision_mod.precision_reason("auto", cpu)
    for isa, fast_bf16 in (("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
                           ("AVX512_CORE_AMX", True), ("ALL", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
        assert cpu_mod.cpu_has_fast_bf16() is fast_bf16, isa
        assert tiled_mod.resolve_precision("auto", cpu) == (torch.bfloat16 if fast_bf16 else torch.float32)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in precision_mod.precision_reason("auto", cpu)
    assert tiled_mod.resolve_precision("bf16", cpu) == torch.bfloat16  # asked for: still honoured
    monkeypatch.setattr(cpu_mod, "cpu_flags_have_bf16", lambda: False)
    assert "no native bf16" in precision_mod.precision_reason("auto", cpu)


def test_fp32_training_uses_channels_last_on_avx2_class_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from spsr.train.runtime import resolve_channels_last

    cpu = torch.device("cpu")
    monkeypatch.setattr(cpu_mod, "_cpu_flags", lambda: "flags : fpu avx2 fma avx512f")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert not cpu_mod.cpu_is_avx2_class()
    assert not resolve_channels_last("auto", None, cpu)
    assert resolve_channels_last("auto", torch.bfloat16, cpu)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cpu_mod.cpu_is_avx2_class()
    assert resolve_channels_last("auto", None, cpu)
    assert not resolve_channels_last("off", None, cpu)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(cpu_mod, "_cpu_flags", lambda: "flags : fpu avx2 fma")
    assert resolve_channels_last("auto", None, cpu)
    monkeypatch.setattr(cpu_mod, "_cpu_flags", lambda: "")
    assert not resolve_channels_last("auto", None, cpu)


@needs_fused
def test_the_networks_are_plain_and_the_torch_engine_accelerates_them() -> None:
    """spsr.archs runs the official op sequence by itself (no fast-path branches); the torch
    engine swaps in the fast subclasses, keeping the weights and state-dict keys."""
    import ast
    from pathlib import Path

    import spsr.archs as archs_pkg

    for path in Path(archs_pkg.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any("torch_fast" in m or m.endswith((".fast", ".winograd")) for m in imported), path
    torch.manual_seed(0)
    model = SPSRNet(nf=8, nb=2, gc=4).eval()
    keys = list(model.state_dict())
    x = torch.rand(1, 3, 16, 14)
    with torch.inference_mode():
        plain = model(x).sr
        with fast.plain_forward():
            assert torch.equal(model(x).sr, plain)  # nothing to switch off: it is plain already
    up = TiledUpscaler(model, 4, tile=0, precision="fp32", engine="torch")
    up(x[0])
    assert type(model).__name__ == "FastSPSRNet" and isinstance(model, SPSRNet)
    assert any(type(m).__name__ == "FastRRDB" for m in model.modules())
    assert list(model.state_dict()) == keys
    with torch.inference_mode():
        torch.testing.assert_close(model(x).sr, plain, rtol=1e-5, atol=1e-5)
