"""Train the small default SPSR-G model that ships in the package (runs on a CPU).

A short L1 (+ gradient-branch L1) training of a small SPSR-G on a folder of HR photos, with the
library's own operators: LR = MATLAB bicubic of the whole HR image, aligned random crops with
flips/rot90. Writes ``.safetensors`` with the command, data, iterations and time in its metadata.

    python -m spsr.tools.train_default_model ../shared/datasets/train/SunHays80 \
        -o spsr/assets/weights/spsr_default_x4.safetensors --minutes 40

This is the bootstrap model of the core issue; the full pipeline (prepare-data → pretrain-psnr →
train) produces the named ``psnr`` / ``perceptual`` models.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from spsr.archs import ArchSpec, build_model
from spsr.data.image_io import is_image_file, read_rgb
from spsr.infer import TiledUpscaler, save_weights
from spsr.ops import bicubic_degrade, imresize_np, rgb_to_y_np
from spsr.ops.gradient import gradient_map


def load_pairs(folder: Path, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for path in sorted(p for p in folder.rglob("*") if is_image_file(p)):
        pairs.append(bicubic_degrade(read_rgb(path), scale))
    return pairs


def sample_batch(pairs, batch: int, lr_size: int, scale: int, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    lrs, hrs = [], []
    for _ in range(batch):
        hr, lr = pairs[rng.randrange(len(pairs))]
        y = rng.randrange(lr.shape[0] - lr_size + 1)
        x = rng.randrange(lr.shape[1] - lr_size + 1)
        lp = lr[y:y + lr_size, x:x + lr_size]
        hp = hr[y * scale:(y + lr_size) * scale, x * scale:(x + lr_size) * scale]
        k = rng.randrange(8)
        lp, hp = np.rot90(lp, k % 4), np.rot90(hp, k % 4)
        if k >= 4:
            lp, hp = lp[:, ::-1], hp[:, ::-1]
        lrs.append(torch.from_numpy(np.ascontiguousarray(lp)).permute(2, 0, 1))
        hrs.append(torch.from_numpy(np.ascontiguousarray(hp)).permute(2, 0, 1))
    return torch.stack(lrs).float() / 255, torch.stack(hrs).float() / 255


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    a = rgb_to_y_np(sr).astype(np.float64)[border:-border, border:-border]
    b = rgb_to_y_np(hr).astype(np.float64)[border:-border, border:-border]
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def evaluate(model, scale: int, folder: Path) -> tuple[float, float]:
    up = TiledUpscaler(model, scale, tile=128, overlap=16, precision="fp32")
    ours, bic = [], []
    for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
        hr, lr = bicubic_degrade(read_rgb(path), scale)
        sr = up(torch.from_numpy(lr).permute(2, 0, 1).float() / 255)
        sr8 = (sr.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        ours.append(psnr_y(sr8, hr, scale))
        bic.append(psnr_y(imresize_np(lr, scale), hr, scale))
    model.train()
    return float(np.mean(ours)), float(np.mean(bic))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--val", type=Path, default=None, help="HR folder for a final PSNR-Y check (e.g. Set5)")
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--nf", type=int, default=24)
    ap.add_argument("--nb", type=int, default=4)
    ap.add_argument("--gc", type=int, default=12)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr-size", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--branch-weight", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (fast on CPUs with AMX/AVX512-BF16)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    scale = 4
    spec = ArchSpec("spsr", scale, nf=args.nf, nb=args.nb, gc=args.gc)
    model = build_model(spec).train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    pairs = load_pairs(args.data, scale)
    data_hash = hashlib.sha256(b"".join(hr.tobytes()[:4096] for hr, _ in pairs)).hexdigest()[:16]
    print(f"{len(pairs)} training images, model {spec.describe()}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters", flush=True)

    start = time.time()
    deadline = start + args.minutes * 60
    step = 0
    halved = False
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.bf16 else contextlib.nullcontext
    while time.time() < deadline:
        lr_img, hr_img = sample_batch(pairs, args.batch, args.lr_size, scale, rng)
        with autocast():
            out = model(lr_img)
        loss = F.l1_loss(out.sr.float(), hr_img) + args.branch_weight * F.l1_loss(out.grad.float(), gradient_map(hr_img))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if not halved and time.time() > start + 0.75 * args.minutes * 60:
            for group in opt.param_groups:
                group["lr"] *= 0.5
            halved = True
        if step % 25 == 0:
            print(f"step {step} loss {loss.item():.4f} ({(time.time() - start) / step:.2f} s/it)", flush=True)

    model.eval()
    provenance = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "data": str(args.data.name),
        "data_images": len(pairs),
        "data_fingerprint": data_hash,
        "iterations": step,
        "batch": args.batch,
        "lr_patch": args.lr_size,
        "losses": f"L1 + {args.branch_weight} * branch L1",
        "train_seconds": round(time.time() - start),
        "device": f"cpu ({platform.machine()})",
        "torch": torch.__version__,
    }
    if args.val is not None:
        ours, bic = evaluate(model, scale, args.val)
        provenance["val"] = {"folder": args.val.name, "psnr_y": round(ours, 3), "bicubic_psnr_y": round(bic, 3)}
        print(f"{args.val.name}: PSNR-Y {ours:.3f} dB (bicubic {bic:.3f} dB)")
    save_weights(args.output, model, spec, provenance)
    print(f"wrote {args.output} after {step} iterations")


if __name__ == "__main__":
    main()
