"""Tiled inference equals whole-image inference; tiling geometry; precision rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spsr.archs import ArchSpec, build_model
from spsr.errors import ConfigError
from spsr.infer import TiledUpscaler, load_model, plan_tiles, resolve_precision


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(1)
    return build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4)).eval()


def test_tiles_cover_the_image_exactly_once_in_their_cores() -> None:
    for h, w, tile, overlap in [(50, 37, 16, 4), (64, 64, 32, 8), (10, 100, 24, 6)]:
        regions = plan_tiles(h, w, tile, overlap)
        cover = np.zeros((h, w), int)
        for r in regions:
            cover[r.y0:r.y1, r.x0:r.x1] += 1
            assert r.cy0 <= r.y0 and r.cy1 >= r.y1 and r.cx0 <= r.x0 and r.cx1 >= r.x1
            assert r.cy0 >= 0 and r.cx0 >= 0 and r.cy1 <= h and r.cx1 <= w
        assert cover.min() >= 1


@pytest.mark.parametrize("size", [(37, 51), (16, 16), (9, 70)])
@pytest.mark.parametrize("batch", [1, 3])
def test_tiled_matches_whole_on_odd_sizes(tiny_model: torch.nn.Module, size: tuple[int, int], batch: int) -> None:
    torch.manual_seed(0)
    x = torch.rand(3, *size)
    whole = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32")(x)
    tiled = TiledUpscaler(tiny_model, 4, tile=16, overlap=4, batch=batch, precision="fp32")(x)
    assert tiled.shape == (3, size[0] * 4, size[1] * 4)
    assert _psnr(whole, tiled) > 60


def test_image_smaller_than_a_tile_runs_whole(tiny_model: torch.nn.Module) -> None:
    x = torch.rand(2, 3, 7, 5)
    out = TiledUpscaler(tiny_model, 4, tile=64, overlap=8, precision="fp32")(x)
    assert out.shape == (2, 3, 28, 20)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_default_model_tiled_vs_whole_on_a_real_image(astronaut: np.ndarray) -> None:
    # The bar: >= 45 dB between tiled (default settings) and whole-image inference.
    loaded = load_model("default")
    lr = torch.from_numpy(astronaut[::2, ::2][:112, :136].copy()).permute(2, 0, 1).float() / 255
    whole = TiledUpscaler(loaded.model, 4, tile=0, precision="fp32")(lr)
    tiled = TiledUpscaler(loaded.model, 4, tile=64, precision="fp32")(lr)  # default overlap 16
    assert _psnr(whole, tiled) >= 45


def test_precision_rules() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("auto", cpu) in (torch.float32, torch.bfloat16)
    with pytest.raises(ConfigError, match="fp16 runs only on CUDA"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="unknown precision"):
        resolve_precision("fp8", cpu)
    with pytest.raises(ConfigError, match="overlap"):
        TiledUpscaler(torch.nn.Identity(), 4, tile=16, overlap=8)


def test_bf16_autocast_stays_close_to_fp32(tiny_model: torch.nn.Module) -> None:
    x = torch.rand(3, 24, 24)
    fp32 = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32")(x)
    bf16 = TiledUpscaler(tiny_model, 4, tile=0, precision="bf16")(x)
    assert _psnr(fp32, bf16) > 35


def test_out_of_memory_halves_batch_then_tile_and_continues(
    tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate a GPU that cannot hold more than one 20-pixel tile: the upscaler must fall back to
    # batch 1, then halve the tile, re-plan only the failed tiles, and still match whole-image output.
    up = TiledUpscaler(tiny_model, 4, tile=40, overlap=4, batch=4, precision="fp32")
    real_run = up._run
    calls = {"oom": 0}

    def limited(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 1 or max(x.shape[-2:]) > 28:
            calls["oom"] += 1
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_run(x)

    monkeypatch.setattr(up, "_run", limited)
    x = torch.rand(3, 61, 45)
    out = up(x)
    whole = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32")(x)
    assert calls["oom"] >= 2 and up.batch == 1 and up.tile == 20
    assert _psnr(whole, out) > 60


def test_out_of_memory_on_a_whole_image_falls_back_to_tiles_or_says_so(
    tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 30×30 image under a 32-pixel tile runs whole; a GPU that holds at most 16-pixel inputs
    # makes it halve the tile to 16 and finish in tiles, matching the whole-image output.
    up = TiledUpscaler(tiny_model, 4, tile=32, overlap=2, batch=1, precision="fp32")
    real_run = up._run

    def limited(x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[-2:]) > 20:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real_run(x)

    monkeypatch.setattr(up, "_run", limited)
    x = torch.rand(3, 30, 30)
    out = up(x)
    assert up.tile == 16
    assert _psnr(TiledUpscaler(tiny_model, 4, tile=0, precision="fp32")(x), out) > 60

    # Nothing fits: a clear out-of-memory error, not endless halving.
    never = TiledUpscaler(tiny_model, 4, tile=32, overlap=2, batch=1, precision="fp32")
    monkeypatch.setattr(never, "_run", lambda x: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("simulated")))
    with pytest.raises(torch.cuda.OutOfMemoryError, match="out of memory"):
        never(x)
    whole_only = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32")
    monkeypatch.setattr(whole_only, "_run", never._run)
    with pytest.raises(torch.cuda.OutOfMemoryError, match="give a --tile"):
        whole_only(x)
def test_tile_progress_counts_every_tile_once(tiny_model: torch.nn.Module) -> None:
    x = torch.rand(3, 50, 37)
    reports: list[tuple[int, int]] = []
    up = TiledUpscaler(tiny_model, 4, tile=16, overlap=4, batch=3, precision="fp32")
    out = up(x, on_tiles=lambda done, total: reports.append((done, total)))
    total = len(plan_tiles(50, 37, 16, 4))
    assert reports[0] == (0, total) and reports[-1] == (total, total)
    dones = [d for d, _ in reports]
    assert dones == sorted(dones) and all(b - a <= 3 for a, b in itertools.pairwise(dones))
    assert torch.equal(out, up(x))  # reporting changes nothing in the result
    whole: list[tuple[int, int]] = []
    TiledUpscaler(tiny_model, 4, tile=0, precision="fp32")(x, on_tiles=lambda d, t: whole.append((d, t)))
    assert whole == [(0, 1), (1, 1)]


def test_tile_progress_total_grows_when_out_of_memory_replans(
    tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = TiledUpscaler(tiny_model, 4, tile=40, overlap=4, batch=1, precision="fp32")
    real_run = up._run
    monkeypatch.setattr(up, "_run", lambda x: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("sim"))
                        if max(x.shape[-2:]) > 28 else real_run(x))
    reports: list[tuple[int, int]] = []
    up(torch.rand(3, 61, 45), on_tiles=lambda done, total: reports.append((done, total)))
    assert reports[0][1] < reports[-1][1] and reports[-1][0] == reports[-1][1]


def test_default_batch_is_one_tile_on_the_cpu_and_four_on_a_gpu(tiny_model: torch.nn.Module) -> None:
    from spsr.lite.tiles import GPU_BATCH, default_batch

    assert default_batch("cpu") == 1 and default_batch("cuda") == GPU_BATCH == 4
    assert TiledUpscaler(tiny_model, 4, tile=16, overlap=4, precision="fp32").batch == 1
    assert TiledUpscaler(tiny_model, 4, tile=16, overlap=4, batch=3, precision="fp32").batch == 3
    with pytest.raises(ConfigError, match="batch >= 1"):
        TiledUpscaler(tiny_model, 4, tile=16, overlap=4, batch=0, precision="fp32")
