"""The inference session: one precision rule for --precision and --amp, one evaluation upscaler
(overlap rule) for spsr eval, ablation scoring and training validation, and a tiled forward
that also returns the gradient branch, so spsr gradmap's memory is bounded by --tile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spsr.archs import ArchSpec, build_model, sr_of
from spsr.errors import ConfigError
from spsr.infer import TiledUpscaler
from spsr.infer.precision import compute_dtype
from spsr.infer.session import eval_overlap, eval_upscaler, uint8_upscaler
from spsr.train.runtime import resolve_amp

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_spsr() -> torch.nn.Module:
    torch.manual_seed(3)
    return build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4)).eval()


def test_one_precision_rule_for_inference_and_training() -> None:
    assert compute_dtype("fp32", CPU) == torch.float32 == compute_dtype("off", CPU, training=True)
    assert compute_dtype("bf16", CPU) == compute_dtype("bf16", CPU, training=True) == torch.bfloat16
    assert compute_dtype("auto", CPU) == compute_dtype("auto", CPU, training=True)
    assert resolve_amp("off", CPU) == (None, False)
    assert resolve_amp("bf16", CPU) == (torch.bfloat16, False)
    with pytest.raises(ConfigError, match="fp16 training needs CUDA"):
        resolve_amp("fp16", CPU)
    with pytest.raises(ConfigError, match="fp16 runs only on CUDA"):
        compute_dtype("fp16", CPU)
    with pytest.raises(ConfigError, match="unknown amp mode 'fp32'"):
        compute_dtype("fp32", CPU, training=True)  # training spells it off
    with pytest.raises(ConfigError, match="unknown precision 'off'"):
        compute_dtype("off", CPU)


def test_eval_overlap_rule() -> None:
    assert [eval_overlap(t) for t in (0, 256, 33, 32, 3, 1)] == [0, 16, 16, 15, 1, 0]


def test_eval_upscaler_is_tiled_with_the_rule(tiny_spsr) -> None:
    up = eval_upscaler(tiny_spsr, 4, tile=20, device="cpu", precision="fp32")
    assert (up.tile, up.overlap, up.batch) == (20, 9, 1)  # one tile a pass on the CPU
    assert eval_upscaler(tiny_spsr, 4, tile=20, device="cpu", precision="fp32", batch=3).batch == 3
    lr = (np.random.default_rng(0).random((30, 26, 3)) * 255).astype(np.uint8)
    sr = uint8_upscaler(up)(lr)
    assert sr.shape == (120, 104, 3) and sr.dtype == np.uint8


def test_tiled_forward_returns_the_gradient_branch_within_tile_memory(tiny_spsr) -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 37, 45)
    with torch.inference_mode():
        whole = tiny_spsr(x.unsqueeze(0))
    seen: list[tuple[int, int]] = []
    hook = tiny_spsr.register_forward_pre_hook(
        lambda _m, args: seen.append(tuple(args[0].shape[-2:]))
    )
    try:
        up = TiledUpscaler(tiny_spsr, 4, tile=16, overlap=4, batch=2, precision="fp32")
        sr, grad = up.with_gradient(x)
    finally:
        hook.remove()
    assert max(max(s) for s in seen) <= 16 + 2 * 4  # never the whole 37×45 image
    assert sr.shape == grad.shape == (3, 148, 180)
    assert torch.equal(sr, up(x))  # the SR image is the one upscaling gives
    mse = float(((grad - whole.grad[0]) ** 2).mean())
    assert mse < 1e-6  # the tiled gradient branch is the whole-image one
    assert torch.allclose(sr_of(whole)[0].clamp(0, 1), sr, atol=1e-3)


def test_gradient_output_needs_a_gradient_branch() -> None:
    plain = build_model(ArchSpec("rrdb", 4, nf=8, nb=1, gc=4)).eval()
    with pytest.raises(ConfigError, match="no gradient branch"):
        TiledUpscaler(plain, 4, tile=0, precision="fp32").with_gradient(torch.rand(3, 8, 8))
