"""U-Net discriminator (the U-Net follow-up, after Schönfeld et al., "A U-Net Based Discriminator for GANs").

The encoder is a residual down-sampling discriminator that ends in a *global* real/fake logit; a
decoder climbs back to the input resolution through skip connections from the encoder and ends in
a *per-pixel* real/fake map. As in the reference design every convolution and the final linear
layer are spectrally normalised (no batch normalisation), so the per-pixel decisions of one image
never depend on the other images of the batch, which the CutMix consistency term needs.

``forward`` returns a :class:`UNetDOutput` with both logits and the output of every block (encoder
then decoder), which the feature-matching loss compares between SR and HR.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class UNetDOutput(NamedTuple):
    """What the U-Net discriminator returns.

    Attributes:
        global_logit: encoder decision, shape ``(N, 1)``.
        pixel_logits: decoder decision per pixel, shape ``(N, 1, H, W)`` (the input's size);
            None for an encoder-only discriminator.
        features: output of every encoder block then every decoder block, for feature matching.
    """

    global_logit: torch.Tensor
    pixel_logits: torch.Tensor | None
    features: list[torch.Tensor]


def _conv(in_nc: int, out_nc: int, kernel_size: int, use_sn: bool) -> nn.Module:
    conv = nn.Conv2d(in_nc, out_nc, kernel_size, padding=kernel_size // 2)
    return spectral_norm(conv) if use_sn else conv


class DownBlock(nn.Module):
    """Residual block that halves the resolution (BigGAN discriminator block).

    Main path ``[act] → conv3 → act → conv3 → avgpool``; shortcut ``conv1 → avgpool``.

    Args:
        in_nc: input channels.
        out_nc: output channels.
        preactivate: apply the activation before the first conv (False for the first block, which
            sees the image itself).
        use_sn: spectral normalisation on the convolutions.
    """

    def __init__(
        self, in_nc: int, out_nc: int, preactivate: bool = True, use_sn: bool = True
    ) -> None:
        super().__init__()
        self.preactivate = preactivate
        self.conv1 = _conv(in_nc, out_nc, 3, use_sn)
        self.conv2 = _conv(out_nc, out_nc, 3, use_sn)
        self.shortcut = _conv(in_nc, out_nc, 1, use_sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(x, 0.2) if self.preactivate else x
        h = self.conv2(F.leaky_relu(self.conv1(h), 0.2))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.shortcut(x), 2)


class UpBlock(nn.Module):
    """Residual block that doubles the resolution (BigGAN generator block without batch norm).

    Main path ``act → nearest ×2 → conv3 → act → conv3``; shortcut ``nearest ×2 →
    conv1``.

    Args:
        in_nc: input channels (decoder features, plus the skip features when concatenated).
        out_nc: output channels.
        use_sn: spectral normalisation on the convolutions.
    """

    def __init__(self, in_nc: int, out_nc: int, use_sn: bool = True) -> None:
        super().__init__()
        self.conv1 = _conv(in_nc, out_nc, 3, use_sn)
        self.conv2 = _conv(out_nc, out_nc, 3, use_sn)
        self.shortcut = _conv(in_nc, out_nc, 1, use_sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.leaky_relu(x, 0.2), scale_factor=2, mode="nearest")
        h = self.conv2(F.leaky_relu(self.conv1(h), 0.2))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNetDiscriminator(nn.Module):
    """Encoder–decoder discriminator with a global and a per-pixel real/fake output.

    With ``channel_mult = (1, 2, 4, 8)`` and ``nf = 64`` the encoder has four down blocks of
    64/128/256/512 channels (``H/2 … H/16``); the decoder has four up blocks that mirror them, the
    input of each after the first being the previous decoder output concatenated with the encoder
    output of the same resolution.

    Args:
        in_nc: image channels.
        nf: channels of the first block.
        channel_mult: channel multiplier of each encoder block (its length is the depth).
        use_sn: spectral normalisation on every conv and the linear layer (the reference design).
        decoder: False builds the encoder alone (its global logit and block features, no per-pixel
            output): the U-Net follow-up's "w/o U-Net" row, an encoder discriminator "as the
            general perceptual-driven methods" (§3.3).

    Input height and width must be multiples of ``2 ** len(channel_mult)``.
    """

    def __init__(
        self,
        in_nc: int = 3,
        nf: int = 64,
        channel_mult: Sequence[int] = (1, 2, 4, 8),
        use_sn: bool = True,
        decoder: bool = True,
    ) -> None:
        super().__init__()
        if not channel_mult:
            raise ValueError("channel_mult needs at least one entry")
        enc_channels = [nf * m for m in channel_mult]
        self.depth = len(enc_channels)
        self.encoder = nn.ModuleList()
        prev = in_nc
        for i, ch in enumerate(enc_channels):
            self.encoder.append(DownBlock(prev, ch, preactivate=i > 0, use_sn=use_sn))
            prev = ch
        linear = nn.Linear(prev, 1)
        self.global_head = spectral_norm(linear) if use_sn else linear

        # Decoder: block j goes from resolution H/2^(depth-j) to H/2^(depth-j-1).
        self.decoder = nn.ModuleList()
        self.pixel_head: nn.Module | None = None
        if not decoder:
            return
        dec_in = enc_channels[-1]
        for j in range(self.depth):
            skip = enc_channels[self.depth - 1 - j] if j > 0 else 0
            out = enc_channels[self.depth - 2 - j] if j < self.depth - 1 else nf
            self.decoder.append(UpBlock(dec_in + skip, out, use_sn=use_sn))
            dec_in = out
        self.pixel_head = _conv(nf, 1, 1, use_sn)

    def forward(self, x: torch.Tensor) -> UNetDOutput:
        """Classify ``x`` (N, C, H, W) globally and per pixel.

        Args:
            x: images in the range the discriminator is trained on (the library's [0,1]).

        Returns:
            :class:`UNetDOutput`: global logit ``(N,1)``, pixel logits ``(N,1,H,W)``, block
            features.
        """
        multiple = 2**self.depth
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(
                f"U-Net discriminator input {tuple(x.shape[-2:])} must be a multiple of {multiple}"
            )
        skips: list[torch.Tensor] = []
        h = x
        for block in self.encoder:
            h = block(h)
            skips.append(h)
        pooled = F.leaky_relu(h, 0.2).sum(dim=(2, 3))
        global_logit = self.global_head(pooled)

        features = list(skips)
        if self.pixel_head is None:
            return UNetDOutput(global_logit, None, features)
        d = h
        for j, block in enumerate(self.decoder):
            if j > 0:
                d = torch.cat([d, skips[self.depth - 1 - j]], dim=1)
            d = block(d)
            features.append(d)
        pixel_logits = self.pixel_head(F.leaky_relu(d, 0.2))
        return UNetDOutput(global_logit, pixel_logits, features)
