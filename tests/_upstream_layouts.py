"""Upstream checkpoint layouts and reference forwards, written from their documented keys and shapes.

Each ``*_state`` function makes a random state dict under the key names and shapes the upstream
project saves (ESRGAN, BasicSR, Real-ESRGAN, EDSR-PyTorch, SPSR); each ``*_forward`` computes that
project's documented forward from such a dict in plain ``torch.nn.functional``, independently of
spsr's network modules, so comparing spsr's loaded model with it is not circular.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Sd = dict[str, torch.Tensor]
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def _conv(sd: Sd, name: str, cout: int, cin: int, k: int, gen: torch.Generator, gain: float = 1.0) -> None:
    bound = gain / math.sqrt(cin * k * k)
    sd[f"{name}.weight"] = (torch.rand(cout, cin, k, k, generator=gen) * 2 - 1) * bound * math.sqrt(3)
    sd[f"{name}.bias"] = (torch.rand(cout, generator=gen) * 2 - 1) * 0.05


def conv(x: torch.Tensor, sd: Sd, name: str) -> torch.Tensor:
    w = sd[f"{name}.weight"]
    return F.conv2d(x, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)


def _up_factors(scale: int) -> list[int]:
    return [3] if scale == 3 else [2] * int(math.log2(scale))


# --------------------------------------------------------------------------- RRDBNet


_RRDB_NAMES = {
    # layout: (first conv, block fmt, trunk conv, up-convs, HR conv, last conv, conv suffix)
    "basicsr": ("conv_first", "body.{n}.rdb{r}.conv{c}", "conv_body", ("conv_up1", "conv_up2"), "conv_hr", "conv_last"),
    "esrgan_repo": ("conv_first", "RRDB_trunk.{n}.RDB{r}.conv{c}", "trunk_conv", ("upconv1", "upconv2"), "HRconv",
                    "conv_last"),
}


def rrdb_state(layout: str, nf: int, nb: int, gc: int, scale: int, seed: int = 0, in_ch: int = 3) -> Sd:
    """RRDBNet under ``layout``: ``old`` (``model.N``, ESRGAN / SPSR), ``esrgan_repo`` or ``basicsr``.

    ``old`` has ``log2(scale)`` up-convs (one for ×3); the others have two, and ``basicsr`` at ×2 / ×1
    folds the input by pixel-unshuffle (``conv_first`` sees 12 / 48 channels).
    """
    gen = torch.Generator().manual_seed(seed)
    sd: Sd = {}
    if layout == "old":
        _conv(sd, "model.0", nf, in_ch, 3, gen)
        names = {"block": "model.1.sub.{n}.RDB{r}.conv{c}.0", "trunk": f"model.1.sub.{nb}"}
        n_up = len(_up_factors(scale))
        ups = [f"model.{3 + 3 * i}" for i in range(n_up)]
        hr, last = f"model.{3 + 3 * n_up - 1}", f"model.{3 + 3 * n_up + 1}"
    else:
        first, block, trunk, up_names, hr, last = _RRDB_NAMES[layout]
        fold = {4: 1, 2: 2, 1: 4}[scale] if layout == "basicsr" else 1
        _conv(sd, first, nf, in_ch * fold * fold, 3, gen)
        names = {"block": block, "trunk": trunk}
        ups = list(up_names)
    for n in range(nb):
        for r in (1, 2, 3):
            for c in range(1, 6):
                cin = nf + (c - 1) * gc
                _conv(sd, names["block"].format(n=n, r=r, c=c), nf if c == 5 else gc, cin, 3, gen)
    _conv(sd, names["trunk"], nf, nf, 3, gen)
    for up in ups:
        _conv(sd, up, nf, nf, 3, gen)
    _conv(sd, hr, nf, nf, 3, gen)
    _conv(sd, last, 3, nf, 3, gen)
    return sd


def _rdb(x: torch.Tensor, sd: Sd, fmt: str) -> torch.Tensor:
    feats = [x]
    for c in range(1, 5):
        feats.append(F.leaky_relu(conv(torch.cat(feats, 1), sd, fmt.format(c=c)), 0.2))
    return conv(torch.cat(feats, 1), sd, fmt.format(c=5)) * 0.2 + x


def rrdb_forward(sd: Sd, layout: str, nb: int, scale: int, x: torch.Tensor) -> torch.Tensor:
    """ESRGAN's RRDBNet forward (BasicSR's with its pixel-unshuffle for ×2 / ×1)."""
    if layout == "old":
        first, block, trunk = "model.0", "model.1.sub.{n}.RDB{r}.conv{{c}}.0", f"model.1.sub.{nb}"
        factors = _up_factors(scale)
        ups = [f"model.{3 + 3 * i}" for i in range(len(factors))]
        hr, last = f"model.{3 + 3 * len(factors) - 1}", f"model.{3 + 3 * len(factors) + 1}"
    else:
        first, block, trunk, ups_t, hr, last = _RRDB_NAMES[layout]
        block = block.replace("{c}", "{{c}}")
        ups, factors = list(ups_t), [2, 2]
        if layout == "basicsr" and scale in (1, 2):
            x = F.pixel_unshuffle(x, 4 // scale)
    feat = conv(x, sd, first)
    out = feat
    for n in range(nb):
        y = out
        for r in (1, 2, 3):
            y = _rdb(y, sd, block.format(n=n, r=r))
        out = y * 0.2 + out
    out = feat + conv(out, sd, trunk)
    for up, f in zip(ups, factors, strict=True):
        out = F.leaky_relu(conv(F.interpolate(out, scale_factor=f, mode="nearest"), sd, up), 0.2)
    return conv(F.leaky_relu(conv(out, sd, hr), 0.2), sd, last)


# --------------------------------------------------------------------------- EDSR


def edsr_pytorch_state(nf: int, nb: int, scale: int, seed: int = 0, rgb_range: float = 255.0) -> Sd:
    """Official EDSR-PyTorch: MeanShift ``sub_mean``/``add_mean`` (std 1), ``head.0``,
    ``body.N.body.0/2``, ``body.{nb}``, ``tail.0.K`` (conv + PixelShuffle pairs), ``tail.1``."""
    gen = torch.Generator().manual_seed(seed)
    sd: Sd = {}
    mean = torch.tensor(DIV2K_MEAN)
    sd["sub_mean.weight"], sd["sub_mean.bias"] = torch.eye(3).view(3, 3, 1, 1), -rgb_range * mean
    _conv(sd, "head.0", nf, 3, 3, gen)
    for n in range(nb):
        _conv(sd, f"body.{n}.body.0", nf, nf, 3, gen)
        _conv(sd, f"body.{n}.body.2", nf, nf, 3, gen)
    _conv(sd, f"body.{nb}", nf, nf, 3, gen)
    for i, f in enumerate(_up_factors(scale)):
        _conv(sd, f"tail.0.{2 * i}", nf * f * f, nf, 3, gen)
    _conv(sd, "tail.1", 3, nf, 3, gen)
    sd["add_mean.weight"], sd["add_mean.bias"] = torch.eye(3).view(3, 3, 1, 1), rgb_range * mean
    return sd


def edsr_pytorch_forward(sd: Sd, nb: int, scale: int, res_scale: float, x01: torch.Tensor,
                         rgb_range: float = 255.0) -> torch.Tensor:
    """EDSR-PyTorch's forward on a [0, rgb_range] image, returned in [0, 1]."""
    x = F.conv2d(x01 * rgb_range, sd["sub_mean.weight"], sd["sub_mean.bias"])
    h = conv(x, sd, "head.0")
    r = h
    for n in range(nb):
        r = r + conv(F.relu(conv(r, sd, f"body.{n}.body.0")), sd, f"body.{n}.body.2") * res_scale
    r = conv(r, sd, f"body.{nb}") + h
    for i, f in enumerate(_up_factors(scale)):
        r = F.pixel_shuffle(conv(r, sd, f"tail.0.{2 * i}"), f)
    y = F.conv2d(conv(r, sd, "tail.1"), sd["add_mean.weight"], sd["add_mean.bias"])
    return y / rgb_range


def basicsr_edsr_state(nf: int, nb: int, scale: int, seed: int = 0, mean: tuple[float, ...] | None = None) -> Sd:
    """BasicSR EDSR: ``conv_first``, ``body.N.conv1/2``, ``conv_after_body``, ``upsample.K``,
    ``conv_last``; ``mean`` only where a fork registers it as a buffer."""
    gen = torch.Generator().manual_seed(seed)
    sd: Sd = {}
    _conv(sd, "conv_first", nf, 3, 3, gen)
    for n in range(nb):
        _conv(sd, f"body.{n}.conv1", nf, nf, 3, gen)
        _conv(sd, f"body.{n}.conv2", nf, nf, 3, gen)
    _conv(sd, "conv_after_body", nf, nf, 3, gen)
    for i, f in enumerate(_up_factors(scale)):
        _conv(sd, f"upsample.{2 * i}", nf * f * f, nf, 3, gen)
    _conv(sd, "conv_last", 3, nf, 3, gen)
    if mean is not None:
        sd["mean"] = torch.tensor(mean).view(1, 3, 1, 1)
    return sd


def basicsr_edsr_forward(sd: Sd, nb: int, scale: int, res_scale: float, x: torch.Tensor,
                         img_range: float = 255.0) -> torch.Tensor:
    """BasicSR's EDSR forward: ``(x - mean)·img_range`` in, ``/img_range + mean`` out."""
    mean = sd.get("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1))
    x = (x - mean) * img_range
    h = conv(x, sd, "conv_first")
    r = h
    for n in range(nb):
        r = r + conv(F.relu(conv(r, sd, f"body.{n}.conv1")), sd, f"body.{n}.conv2") * res_scale
    r = conv(r, sd, "conv_after_body") + h
    for i, f in enumerate(_up_factors(scale)):
        r = F.pixel_shuffle(conv(r, sd, f"upsample.{2 * i}"), f)
    return conv(r, sd, "conv_last") / img_range + mean


# --------------------------------------------------------------------------- MSRResNet


def msrresnet_state(nf: int, nb: int, scale: int, seed: int = 0) -> Sd:
    """BasicSR MSRResNet: ``conv_first``, ``body.N.conv1/2``, ``upconv1`` (×9 channels for ×3,
    ×4 otherwise), ``upconv2`` (×4 only), ``conv_hr``, ``conv_last``."""
    gen = torch.Generator().manual_seed(seed)
    sd: Sd = {}
    _conv(sd, "conv_first", nf, 3, 3, gen)
    for n in range(nb):
        _conv(sd, f"body.{n}.conv1", nf, nf, 3, gen)
        _conv(sd, f"body.{n}.conv2", nf, nf, 3, gen)
    for i, f in enumerate(_up_factors(scale)):
        _conv(sd, f"upconv{i + 1}", nf * f * f, nf, 3, gen)
    _conv(sd, "conv_hr", nf, nf, 3, gen)
    _conv(sd, "conv_last", 3, nf, 3, gen)
    return sd


def msrresnet_forward(sd: Sd, nb: int, scale: int, x: torch.Tensor) -> torch.Tensor:
    """MSRResNet: LeakyReLU(0.1) head, plain residual body, PixelShuffle up-convs, HR conv, last
    conv, plus the bilinear upsampling of the input."""
    out = F.leaky_relu(conv(x, sd, "conv_first"), 0.1)
    for n in range(nb):
        out = out + conv(F.relu(conv(out, sd, f"body.{n}.conv1")), sd, f"body.{n}.conv2")
    for i, f in enumerate(_up_factors(scale)):
        out = F.leaky_relu(F.pixel_shuffle(conv(out, sd, f"upconv{i + 1}"), f), 0.1)
    out = conv(F.leaky_relu(conv(out, sd, "conv_hr"), 0.1), sd, "conv_last")
    return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- wrappers


WRAPPERS = ("plain", "params", "params_ema", "state_dict", "module", "legacy")


def save_wrapped(sd: Sd, path: str, wrapper: str) -> None:
    """Save as the upstream projects do: bare, under ``params`` / ``params_ema`` (BasicSR, with a
    decoy ``params`` beside the EMA), ``state_dict`` with ``module.`` prefixes (DataParallel), or
    with the legacy (pre-zip) serialisation."""
    if wrapper == "plain":
        torch.save(sd, path)
    elif wrapper == "params":
        torch.save({"params": sd}, path)
    elif wrapper == "params_ema":
        torch.save({"params": {k: torch.zeros_like(v) for k, v in sd.items()}, "params_ema": sd}, path)
    elif wrapper == "state_dict":
        torch.save({"state_dict": sd, "epoch": 7}, path)
    elif wrapper == "module":
        torch.save({f"module.{k}": v for k, v in sd.items()}, path)
    elif wrapper == "legacy":
        torch.save(sd, path, _use_new_zipfile_serialization=False)
    else:
        raise ValueError(wrapper)
