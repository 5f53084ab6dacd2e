"""Winograd F(4×4, 3×3) inference path of the RRDB blocks (spsr.engines.torch_fast.winograd,
applied by the torch engine)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spsr import cpu
from spsr.archs import SPSRNet, sr_of
from spsr.archs.blocks import RRDB
from spsr.engines.torch_fast import accelerate, plain_forward, winograd


@pytest.fixture(autouse=True)
def _winograd_on_any_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path's numerics are tested on every CPU, including those where it is off by default."""
    monkeypatch.setenv("SPSR_WINOGRAD", "1")


def _winograd_conv(conv: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    grid = winograd.Grid(n, h, w)
    xp = grid.pad(x)
    scratch = torch.empty(max(c, conv.out_channels) * 36 * grid.span_tiles)
    v = torch.empty(c, 36, grid.tiles)
    grid.transform_into(xp, v, scratch)
    out = torch.zeros(n, conv.out_channels, *grid.padded_hw)
    grid.convolve(winograd.transform_weight(conv.weight), conv.bias, v, out, None,
                  torch.empty(conv.out_channels * 36 * grid.span_tiles), scratch)
    return grid.crop(out)


@pytest.mark.parametrize("shape", [(1, 5, 8, 8), (2, 3, 7, 9), (1, 4, 13, 4), (1, 2, 1, 1)])
def test_one_convolution_matches_the_direct_one(shape: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(shape[1], 6, 3, padding=1)
    x = torch.rand(shape)
    with torch.no_grad():
        ref = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
        out = _winograd_conv(conv, x)
    assert out.shape == ref.shape
    # fp32 with transform coefficients up to 8: about 1e-6 of the output's scale.
    assert float((out.double() - ref).abs().max()) < 1e-5 * max(1.0, float(ref.abs().max()))


def test_the_weight_transform_reproduces_the_kernel() -> None:
    # Aᵀ (G g Gᵀ ⊙ Bᵀ δ B) A for a unit impulse d reproduces the correlation of g with it.
    torch.manual_seed(6)
    g = torch.randn(1, 1, 3, 3)
    u = winograd.transform_weight(g)
    assert u.shape == (36, 1, 1)
    impulse = torch.zeros(1, 1, 4, 4)
    impulse[0, 0, 1, 1] = 1
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(g)
        # The transforms run in fp32 (coefficients up to 8): ~1e-6 of the kernel's scale.
        err = float((_winograd_conv(conv, impulse) - conv(impulse)).abs().max())
    assert err < 5e-6 * float(g.abs().max())
    # and the fp32 weight transform is the fp64 one to fp32 rounding
    w = torch.randn(7, 5, 3, 3, dtype=torch.float64)
    exact = torch.einsum("au,oiuv,bv->aboi", winograd._G, w, winograd._G).reshape(36, 7, 5)
    assert float((winograd.transform_weight(w).double() - exact).abs().max()) < 1e-6 * float(exact.abs().max())


@pytest.mark.parametrize("shape", [(1, 8, 50, 50), (3, 8, 49, 53), (1, 8, 120, 70)])
def test_rrdb_matches_the_plain_forward(shape: tuple[int, int, int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winograd, "CHUNK", 40)  # forces the windowed path on the larger maps
    torch.manual_seed(0)
    block = accelerate(RRDB(8, 4).eval())
    x = torch.rand(shape).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert winograd.applies(x)
        with plain_forward():
            ref = block(x)
        out = winograd.rrdb_forward(block, x)
        assert torch.equal(block(x), out)  # the module's inference forward takes this path
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert float((out - ref).abs().max()) < 1e-5


@pytest.mark.parametrize("span_tiles", [1, 7, 30])
def test_spans_of_tile_rows_give_the_same_result(span_tiles: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Convolutions run span by span (whole tile rows, never across images): any span size, a
    batch, and maps that do not fill whole 4×4 blocks give the single-span result."""
    torch.manual_seed(5)
    block = accelerate(RRDB(8, 4).eval())
    x = torch.rand(2, 8, 30, 23)  # 8 × 6 tiles per image, the last row and column part-filled
    with torch.no_grad():
        whole = winograd._rrdb_whole(block, x).clone()
        winograd.release_scratch()
        monkeypatch.setattr(winograd, "SPAN_TILES", span_tiles)
        grid = winograd.Grid(2, 30, 23)
        assert [s.image for s in grid.spans] == sorted(s.image for s in grid.spans)
        assert sum(s.tiles for s in grid.spans) == grid.tiles
        assert len(grid.spans) == 2 * -(-8 // max(1, span_tiles // 6))  # whole rows of 6 tiles
        spans = winograd._rrdb_whole(block, x)
        winograd.release_scratch()
    assert float((spans - whole).abs().max()) < 1e-5


def test_small_maps_and_the_switch_keep_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not winograd.applies(torch.zeros(1, 8, 16, 16))
    assert winograd.applies(torch.zeros(4, 8, 32, 32))
    monkeypatch.setenv("SPSR_WINOGRAD", "0")
    assert not winograd.applies(torch.zeros(4, 8, 64, 64))


def test_by_default_it_runs_only_on_the_cpus_where_it_measured_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPSR_WINOGRAD")
    x = torch.zeros(4, 8, 64, 64)
    try:
        for cpuinfo, expected in (("vendor_id\t: GenuineIntel\n", True), ("vendor_id\t: AuthenticAMD\n", False),
                                  ("Features\t: asimd\n", False), ("", False)):
            monkeypatch.setattr(cpu, "_cpu_flags", lambda text=cpuinfo: text)
            winograd._vendor_wins.cache_clear()
            assert winograd.applies(x) is expected, cpuinfo
        monkeypatch.setenv("SPSR_WINOGRAD", "on")  # forced on where it is off by default
        assert winograd.applies(x)
        monkeypatch.setenv("SPSR_WINOGRAD", "off")
        monkeypatch.setattr(cpu, "_cpu_flags", lambda: "vendor_id : GenuineIntel")
        winograd._vendor_wins.cache_clear()
        assert not winograd.applies(x)
    finally:
        winograd._vendor_wins.cache_clear()


def test_a_changed_weight_is_transformed_again() -> None:
    torch.manual_seed(0)
    block = accelerate(RRDB(8, 4).eval())
    x = torch.rand(1, 8, 64, 64)
    with torch.no_grad():
        before = winograd.rrdb_forward(block, x).clone()
        block.RDB1.conv1[0].weight.mul_(2)
        after = winograd.rrdb_forward(block, x)
        with plain_forward():
            ref = block(x)
    assert not torch.allclose(before, after)
    assert float((after - ref).abs().max()) < 1e-5


def test_spsr_g_output_within_a_fraction_of_a_grey_level(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = accelerate(SPSRNet(nf=8, nb=2, gc=4, scale=4).eval())
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        fast_sr = sr_of(model(x))
        with plain_forward():
            ref = sr_of(model(x))
        monkeypatch.setenv("SPSR_WINOGRAD", "0")
        direct = sr_of(model(x))
    assert float((fast_sr - ref).abs().max()) * 255 < 0.01
    assert float((direct - ref).abs().max()) * 255 < 0.01
    assert not torch.equal(fast_sr, direct)  # the HR fusion block did take the Winograd path


def test_training_never_takes_it() -> None:
    torch.manual_seed(0)
    block = accelerate(RRDB(8, 4))
    x = torch.rand(1, 8, 64, 64)
    block(x).sum().backward()  # autograd: the plain convolutions (out= buffers have no gradient)
    grad = block.RDB1.conv1[0].weight.grad.clone()
    block.zero_grad()
    with plain_forward():
        block(x).sum().backward()
    assert torch.equal(grad, block.RDB1.conv1[0].weight.grad)
