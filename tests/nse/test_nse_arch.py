"""NSE architecture (TPAMI 2021 App. A): receptive field, stride, channels, heads, D_SF."""

from __future__ import annotations

import pytest
import torch

from spsr.archs.discriminator_sf import StructureFeatureDiscriminator
from spsr.nse.extractor import (
    JIGSAW_PERMUTATIONS,
    ContrastivePredictor,
    JigsawHead,
    NeuralStructureExtractor,
)


def _gradient_support(net: NeuralStructureExtractor, size: int, i: int, j: int) -> torch.Tensor:
    """Boolean size×size map of the input pixels that output position (i, j) depends on."""
    image = torch.rand(1, 3, size, size, requires_grad=True) + 0.1
    out = net(image)
    (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), image)
    return grad.abs().sum(1)[0] > 0


def _bounding_box(support: torch.Tensor) -> tuple[int, int, int, int]:
    rows = support.any(1).nonzero().flatten()
    cols = support.any(0).nonzero().flatten()
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def _all_active(net: NeuralStructureExtractor) -> NeuralStructureExtractor:
    """Positive weights and biases: on a positive input every ReLU passes its gradient, so the
    gradient's support is exactly the receptive field."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.abs() * 0.1 + 0.01)
    return net


def test_nse_receptive_field_is_31_and_stride_4_by_backpropagation() -> None:
    torch.manual_seed(0)
    net = _all_active(NeuralStructureExtractor(mid_channels=8))
    size = 96
    for i, j in [(10, 10), (10, 11), (11, 10), (6, 15)]:
        support = _gradient_support(net, size, i, j)
        top, left, bottom, right = _bounding_box(support)
        assert (bottom - top + 1, right - left + 1) == (31, 31)
        assert int(support.sum()) == 31 * 31  # the whole window, not just its outline
        # Output (i, j) is centred on input pixel (4i, 4j): neighbours are 4 pixels apart.
        assert (top, left) == (4 * i - 15, 4 * j - 15)


def test_nse_random_init_support_stays_inside_the_31x31_window() -> None:
    torch.manual_seed(1)
    net = NeuralStructureExtractor(mid_channels=16)
    support = _gradient_support(net, 80, 10, 9)
    top, left, bottom, right = _bounding_box(support)
    assert top >= 40 - 15 and bottom <= 40 + 15
    assert left >= 36 - 15 and right <= 36 + 15
    assert bottom - top >= 20  # and it reaches far: ReLUs do not block everything


def test_nse_output_shape_channels_and_nonnegative() -> None:
    net = NeuralStructureExtractor()
    out = net(torch.rand(2, 3, 64, 48))
    assert out.shape == (2, 32, 16, 12)
    assert bool((out >= 0).all())  # every convolution is followed by a ReLU
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 6
    assert net.config() == {"in_channels": 3, "mid_channels": 64, "out_channels": 32}


def test_nse_residual_skips_carry_the_identity() -> None:
    net = NeuralStructureExtractor(mid_channels=8)
    x = torch.rand(1, 8, 10, 10)
    with torch.no_grad():
        for conv in (net.block1.conv2,):
            conv.weight.zero_()
            conv.bias.zero_()
    # With the residual branch silenced the block is ReLU(x) = x on non-negative input.
    assert torch.allclose(net.block1(x), x)


def test_contrastive_predictor_and_jigsaw_head_shapes() -> None:
    predictor = ContrastivePredictor(channels=32, num_inputs=4, hidden=64)
    assert predictor(torch.rand(5, 7, 4, 32)).shape == (5, 7, 32)
    head = JigsawHead(channels=32, hidden=64)
    logits = head(torch.rand(3, 4, 32))
    assert logits.shape == (3, 24)
    # Starts from uniform predictions (zero-initialised last layer).
    assert torch.equal(logits, torch.zeros_like(logits))
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3


def test_jigsaw_permutations_are_the_24_distinct_orderings() -> None:
    assert len(JIGSAW_PERMUTATIONS) == 24
    assert len(set(JIGSAW_PERMUTATIONS)) == 24
    assert all(sorted(p) == [0, 1, 2, 3] for p in JIGSAW_PERMUTATIONS)
    assert JIGSAW_PERMUTATIONS[0] == (0, 1, 2, 3)


@pytest.mark.parametrize(
    ("channels", "size", "final"),
    [(32, 32, 4), (512, 8, 4), (256, 8, 4), (32, 4, 4), (32, 6, 6), (32, 16, 4)],
)
def test_structure_feature_discriminator_adapts_to_feature_maps(
    channels: int, size: int, final: int
) -> None:
    d = StructureFeatureDiscriminator(channels, size, nf=8, hidden=16)
    assert d.final_size == final
    assert d(torch.rand(2, channels, size, size)).shape == (2, 1)
    with pytest.raises(ValueError, match="built for"):
        d(torch.rand(2, channels, size + 4, size + 4))
