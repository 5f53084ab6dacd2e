"""Neural structure extractor (NSE) of SPSR-P / SPSR-J and the heads of its pretext tasks.

TPAMI 2021 §4.1 and App. A: a small ResNet-style network of 6 convolutions, each followed by a ReLU,
with two residual skips; every output vector sees a 31×31 window of the image and neighbouring
vectors are 4 pixels apart (output stride 4); the structure features have 32 channels.

The figure with the exact layer list (Fig. 12) is not in the text we have, so the layout below is
the one the stated constraints leave: all kernels 3×3 (the caption's example, "k3s1c64"), two
stride-2 convolutions for the stride 4, and a residual block of two convolutions after each:

    conv k3 s2 (3→mid) · ReLU                      receptive field  3, stride 2
    [conv k3 s1 · ReLU · conv k3 s1] + skip · ReLU  receptive field 11
    conv k3 s2 (mid→out) · ReLU                    receptive field 15, stride 4
    [conv k3 s1 · ReLU · conv k3 s1] + skip · ReLU  receptive field 31

Zero padding 1 everywhere: for an input of H×W (multiples of 4) the map is H/4×W/4 and output
position (i, j) is centred on input pixel (4i, 4j), its receptive field spanning
[4i-15, 4i+15] × [4j-15, 4j+15] (clipped to the image: the rest is padding).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

#: Side of the square window of image pixels each structure feature sees.
NSE_RECEPTIVE_FIELD = 31
#: Distance in pixels between the windows of neighbouring structure features.
NSE_STRIDE = 4
#: Channels of the structure features (TPAMI 2021 §5.1).
NSE_CHANNELS = 32

#: The 4! orderings of a 2×2 jigsaw, in lexicographic order; the class index is the position here.
JIGSAW_PERMUTATIONS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(4)))


class _ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a ReLU between them, an identity skip, and a ReLU after the sum.

    Args:
        channels: input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class NeuralStructureExtractor(nn.Module):
    """The NSE F: image → structure feature map at 1/4 resolution.

    Args:
        in_channels: image channels (3 for RGB).
        mid_channels: width of the first stage (before the second stride-2 convolution).
        out_channels: channels of the structure features (32 in the paper).

    Input: float images N×C×H×W in [0, 1]. Output: N×out_channels×ceil(H/4)×ceil(W/4), ≥ 0.
    """

    receptive_field: int = NSE_RECEPTIVE_FIELD
    stride: int = NSE_STRIDE

    def __init__(
        self, in_channels: int = 3, mid_channels: int = 64, out_channels: int = NSE_CHANNELS
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.mid_channels = mid_channels
        self.out_channels = out_channels
        self.conv_in = nn.Conv2d(in_channels, mid_channels, 3, 2, 1)
        self.block1 = _ResidualBlock(mid_channels)
        self.conv_down = nn.Conv2d(mid_channels, out_channels, 3, 2, 1)
        self.block2 = _ResidualBlock(out_channels)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # He initialisation, as ResNet
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv_in(image))
        x = self.block1(x)
        x = F.relu(self.conv_down(x))
        return self.block2(x)

    def config(self) -> dict[str, int]:
        """Constructor arguments, for writing next to the weights."""
        return {
            "in_channels": self.in_channels,
            "mid_channels": self.mid_channels,
            "out_channels": self.out_channels,
        }


class ContrastivePredictor(nn.Module):
    """Predictor P of contrastive prediction: neighbour features → predicted target feature.

    Fully connected layers with ReLU between them (TPAMI 2021 §4.2); it takes the concatenation of
    the M neighbour vectors.

    Args:
        channels: channels of one structure feature.
        num_inputs: M, the number of neighbour positions (2 for horizontal/vertical, 4 for cross).
        hidden: width of the hidden layer.
    """

    def __init__(
        self, channels: int = NSE_CHANNELS, num_inputs: int = 2, hidden: int = 256
    ) -> None:
        super().__init__()
        self.channels = channels
        self.num_inputs = num_inputs
        self.net = nn.Sequential(
            nn.Linear(channels * num_inputs, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels),
        )

    def forward(self, neighbours: torch.Tensor) -> torch.Tensor:
        """Args:
            neighbours: ... × M × C features of the input positions.

        Returns:
            ... × C predicted target features.
        """
        return self.net(neighbours.flatten(-2))


class JigsawHead(nn.Module):
    """Classifier J of the jigsaw task: 4 shuffled features → logits over the 24 permutations.

    Three fully connected layers (TPAMI 2021 §4.2).

    Args:
        channels: channels of one structure feature.
        hidden: width of the two hidden layers.
        num_tiles: tiles in the puzzle (4 for the 2×2 grid).
    """

    def __init__(self, channels: int = NSE_CHANNELS, hidden: int = 256, num_tiles: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.num_tiles = num_tiles
        num_classes = len(list(itertools.permutations(range(num_tiles))))
        logits = nn.Linear(hidden, num_classes)
        self.net = nn.Sequential(
            nn.Linear(channels * num_tiles, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            logits,
        )
        # Start from uniform predictions: random initial logits only add loss that the extractor
        # would first learn to silence by shrinking its features (a long plateau at log 24).
        nn.init.zeros_(logits.weight)
        nn.init.zeros_(logits.bias)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        """Args:
            tiles: ... × num_tiles × C features, in shuffled order.

        Returns:
            ... × num_tiles! logits.
        """
        return self.net(tiles.flatten(-2))
