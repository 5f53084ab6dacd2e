"""The CUDA paths on a real GPU: AMP training steps (bf16; fp16 with gradient scaling) of the GAN
variants, bit-exact resume, ``torchrun`` with NCCL, and ``spsr upscale`` on the GPU against the CPU.

Every test here is marked ``cuda`` and skips where ``torch.cuda.is_available()`` is False (CI).
``tests/gpu/run_checks.sh`` runs them on a GPU machine (``pytest -m cuda``); its ``--dry-run``
sets ``SPSR_CUDA_TESTS_ON_CPU=1``, which runs the same tests on the CPU (fp16 cases skipped: fp16
autocast is CUDA only) so the tests themselves are exercised without a GPU.
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _train_fixtures import (  # noqa: F401
    PYTHON,
    TinyPairs,
    assert_identical,
    make_store,
    one_thread,
    subprocess_env,
    tiny_config,
)
from typer.testing import CliRunner

from spsr.data.image_io import read_image, write_image
from spsr.train.config import validate
from spsr.train.distributed import DistContext, resolve_device
from spsr.train.engine import Trainer
from spsr.train.log import read_log
from spsr.train.runtime import Runtime, resolve_amp
from spsr.train.state import load_state
from spsr.train.variants import get_stage
from spsr_cli.app import app

pytestmark = pytest.mark.cuda

ON_CPU = os.environ.get("SPSR_CUDA_TESTS_ON_CPU") == "1"
SHAPES = {"lr": (3, 8, 8), "hr": (3, 32, 32)}
# The U-Net variant at a tiny size: random LPIPS trunk (no AlexNet file), small U-Net D, CutMix
# from the first step (its mask is drawn on the device, from the CUDA generator).
TINY_U = {"loss.perceptual_net": "lpips_random", "unet.nf": 4, "unet.cutmix_warmup": 0,
          "unet.cutmix_prob": 1.0}


def _gpu_or_skip() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda:0")
    if ON_CPU:
        return torch.device("cpu")
    pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False)")


@pytest.fixture()
def device() -> torch.device:
    """The GPU (or, in the dry run, the CPU)."""
    return _gpu_or_skip()


def _needs_cuda_for(amp: str, device: torch.device) -> None:
    if amp == "fp16" and device.type != "cuda":
        pytest.skip("fp16 autocast and gradient scaling are CUDA only")


@pytest.fixture(scope="module")
def nse_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny NSE 'trained by contrastive prediction' (random weights), for variant p."""
    from spsr.nse.extractor import NeuralStructureExtractor
    from spsr.nse.files import save_nse

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("nse") / "nse.safetensors"
    save_nse(path, NeuralStructureExtractor(mid_channels=8), {"task": "contrastive"})
    return path


def _variant_overrides(variant: str, nse: Path) -> dict[str, Any]:
    if variant == "u":
        return dict(TINY_U)
    if variant == "p":
        return {"structure.nse": str(nse)}
    return {}


def _batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(2, 3, 32, 32, generator=g)
    return {"lr": F.avg_pool2d(hr, 4), "hr": hr}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("variant", ["esrgan", "g", "p", "u"])
def test_amp_training_steps_keep_losses_finite_and_weights_fp32(
    device: torch.device, amp: str, variant: str, nse_file: Path
) -> None:
    _needs_cuda_for(amp, device)
    cfg = validate(tiny_config(variant, **{"run.amp": amp, "run.device": str(device),
                                           "run.channels_last": "on",
                                           **_variant_overrides(variant, nse_file)}))
    amp_dtype, use_scaler = resolve_amp(amp, device)
    assert use_scaler == (amp == "fp16")  # bf16 needs no gradient scaling
    rt = Runtime(cfg=cfg, dist=DistContext(device=device), amp_dtype=amp_dtype,
                 use_scaler=use_scaler, channels_last=True, data_shapes=SHAPES)
    torch.manual_seed(0)
    stage = get_stage(cfg.stage)(cfg, rt)
    G = stage.module("G")
    before = {n: p.detach().clone() for n, p in G.named_parameters()}
    for it in range(1, 7):
        rt.iteration = it
        values = stage.train_step(rt.to_device(_batch(it)))
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        assert values and not bad, f"iteration {it}: non-finite {bad}"
    assert rt.nonfinite == []  # no step was skipped for a NaN/inf loss
    params = dict(G.named_parameters())
    assert all(p.dtype == torch.float32 and p.device.type == device.type for p in params.values())
    assert any(not torch.equal(before[n], p) for n, p in params.items())  # the optimizer stepped
    convs = [m.weight for m in G.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    # fp16: one scaler per optimizer, its scale finite (it shrinks on overflow, grows when stable).
    assert set(rt.scalers) == (set(rt.optimizers) if use_scaler else set())
    for name, scaler in rt.scalers.items():
        assert 0 < scaler.get_scale() < float("inf"), name


def _stop_at(iteration: int):
    def callback(trainer: Trainer) -> None:
        if trainer.iteration == iteration:
            trainer.request_stop("SIGTERM")
    return callback



@pytest.mark.parametrize(("variant", "amp"), [("g", "bf16"), ("g", "fp16"), ("u", "bf16")])
def test_twelve_steps_equal_six_then_stop_then_resume_six_bit_exact(
    device: torch.device, tmp_path: Path, variant: str, amp: str, nse_file: Path
) -> None:
    _needs_cuda_for(amp, device)
    cfg = tiny_config(variant, **{"run.iterations": 12, "run.checkpoint_every": 3, "run.ema": 0.9,
                                  "model.nb": 1, "optim.milestones": "4,9", "run.amp": amp,
                                  "run.device": str(device), "run.channels_last": "on",
                                  "run.deterministic": True, **_variant_overrides(variant, nse_file)})
    data = TinyPairs(n=6)
    assert Trainer(cfg, tmp_path / "whole", dataset=data, command="whole").run().iteration == 12
    first = Trainer(cfg, tmp_path / "split", dataset=data, callbacks=[_stop_at(6)], command="a").run()
    assert (first.reason, first.iteration) == ("SIGTERM", 6)
    second = Trainer(cfg, tmp_path / "split", resume=True, dataset=data, command="b").run()
    assert (second.reason, second.iteration) == ("finished", 12)

    a = load_state(tmp_path / "whole" / "state" / "last.pt")
    b = load_state(tmp_path / "split" / "state" / "last.pt")
    for state in (a, b):  # provenance differs by design (sessions, command lines, wall time)
        state["engine"].pop("train_seconds")
        state["engine"].pop("commands")
    if device.type == "cuda":
        assert all(len(r["cuda"]) == 1 for r in a["rng"])  # this process's GPU generator only
    if amp == "fp16":
        assert set(a["scalers"]) == set(a["optimizers"])  # the GradScalers' state is resumed too
    assert_identical(a, b)
    start = read_log(tmp_path / "whole", "start")[0]
    assert start["device"] == str(device) and start["amp"] == ("bfloat16" if amp == "bf16" else "float16")


def test_torchrun_one_process_trains_in_a_process_group(device: torch.device, tmp_path: Path) -> None:
    """``torchrun --nproc_per_node 1``: NCCL on a GPU (gloo on the CPU), DDP-wrapped, collectives."""
    store = make_store(tmp_path / "data")
    run = tmp_path / "run"
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "spsr_cli.app", "train", str(store), "--variant", "g", "-o", str(run),
           "--iterations", "3", "--batch-size", "2", "--nf", "8", "--nb", "1", "--set", "model.gc=4",
           "--set", "d.nf=4", "--set", "d.hidden=8", "--perceptual", "none", "--amp", "auto",
           "--log-every", "1", "--workers", "1", "--device", str(device), "--quiet"]
    proc = subprocess.run(cmd, check=False, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    start = read_log(run, "start")[0]
    assert start["backend"] == ("nccl" if device.type == "cuda" else "gloo")
    assert (start["world_size"], start["device"]) == (1, str(device))
    train = read_log(run, "train")
    assert len(train) == 3 and all(math.isfinite(r["g/total"]) for r in train)
    val = read_log(run, "val")  # validation on the store's held-out image, tiled, on the device
    assert len(val) == 1 and math.isfinite(val[0]["psnr"]) and val[0]["psnr"] > 5
    assert load_state(run / "state" / "last.pt")["iteration"] == 3


def test_device_auto_picks_the_gpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False)")
    assert resolve_device("auto") == torch.device("cuda:0")
    assert resolve_device("cuda") == torch.device("cuda:0")
    amp_dtype, scaler = resolve_amp("auto", torch.device("cuda:0"))
    assert (amp_dtype, scaler) in ((torch.bfloat16, False), (torch.float16, True))


# ---------------------------------------------------------------------- spsr upscale, GPU vs CPU

#: Agreement of ``spsr upscale`` on the GPU with the CPU fp32 output, in 8-bit levels of the
#: written PNG (the bundled default model on a 96×96 crop of a real photo, tiled by 48).
#: fp32: every pixel within 1 level (cuDNN and the CPU sum in different orders). bf16 (8-bit
#: mantissa) and fp16 (11-bit) are held to a maximum, a mean and a PSNR against the CPU fp32
#: output; for scale, bf16 autocast on this project's CPU differs from its fp32 by at most 1
#: level (mean 0.03, 63 dB), the bicubic skip being added in fp32.
UPSCALE_BOUNDS = {
    "fp32": {"max": 1, "mean": 0.05, "psnr": 55.0},
    "bf16": {"max": 8, "mean": 0.5, "psnr": 45.0},
    "fp16": {"max": 4, "mean": 0.25, "psnr": 50.0},
}


def _upscale(src: Path, out: Path, device: str, precision: str, *extra: str) -> np.ndarray:
    result = CliRunner().invoke(app, ["upscale", str(src), str(out), "--device", device,
                                      "--precision", precision, "--tile", "48", "--tile-overlap",
                                      "8", "--quiet", *extra])
    assert result.exit_code == 0, result.output
    return read_image(out).pixels.astype(np.float64)


@pytest.fixture(scope="module")
def cpu_reference(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> tuple[Path, np.ndarray]:
    _gpu_or_skip()  # module-scoped fixtures are set up before `device`: skip before the CPU run
    folder = tmp_path_factory.mktemp("upscale")
    src = folder / "crop.png"
    side = 48 if ON_CPU else 96  # the dry run on a CPU: a smaller crop
    write_image(src, np.ascontiguousarray(astronaut[80:80 + side, 160:160 + side]))
    return src, _upscale(src, folder / "cpu_fp32.png", "cpu", "fp32")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_upscale_on_the_gpu_matches_the_cpu(
    device: torch.device, tmp_path: Path, precision: str, cpu_reference: tuple[Path, np.ndarray]
) -> None:
    _needs_cuda_for(precision, device)
    src, reference = cpu_reference
    out = _upscale(src, tmp_path / "gpu.png", str(device), precision)
    assert out.shape == reference.shape and out.shape[0] in (192, 384)
    diff = np.abs(out - reference)
    mse = float((diff ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
    bound = UPSCALE_BOUNDS[precision]
    print(f"{precision} on {device}: max {diff.max():.0f}, mean {diff.mean():.3f} levels, {psnr:.1f} dB")
    assert diff.max() <= bound["max"] and diff.mean() <= bound["mean"] and psnr >= bound["psnr"]


def test_channels_last_on_cudnn_gives_the_same_image(device: torch.device) -> None:
    from spsr.archs import ArchSpec, build_model
    from spsr.infer import TiledUpscaler

    torch.manual_seed(2)
    model = build_model(ArchSpec("spsr", 4, nf=16, nb=2, gc=8)).eval()
    x = torch.rand(3, 40, 52)
    plain = TiledUpscaler(model, 4, tile=0, device=device, precision="fp32", channels_last=False)(x)
    cl = TiledUpscaler(model, 4, tile=0, device=device, precision="fp32", channels_last=True)(x)
    assert cl.shape == plain.shape == (3, 160, 208)
    assert float((cl - plain).abs().max()) < 0.1 / 255  # other cuDNN kernels, same image


def test_the_upscaler_api_with_engine_auto_runs_pytorch_on_the_gpu(device: torch.device) -> None:
    """#33: on CUDA ``--engine auto`` is PyTorch (OpenVINO and ONNX Runtime are CPU engines here),
    and the Python API's fp32 result on the GPU is the CPU reference within one grey level."""
    from spsr.api import Upscaler
    from spsr.data.image_io import read_rgb
    from spsr.engines import auto_engine
    from spsr.infer.files import sample_images

    assert auto_engine(torch.device("cuda"))[0] == "torch"
    lr = read_rgb(sorted(sample_images())[0])
    on_device = Upscaler("default", engine="auto", precision="fp32", tile=64, device=str(device))(lr)
    reference = Upscaler("default", engine="torch", precision="fp32", tile=64, device="cpu")(lr)
    assert on_device.shape == reference.shape == (lr.shape[0] * 4, lr.shape[1] * 4, 3)
    assert int(np.abs(on_device.astype(int) - reference.astype(int)).max()) <= 1
