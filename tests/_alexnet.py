"""A random AlexNet features file in torchvision's layout (no ImageNet weights here; shared by
tests/losses/test_unet_lpips.py and tests/cli/test_working_folder_cli.py)."""

from __future__ import annotations

from pathlib import Path

import torch


def random_alexnet_features(path: Path) -> dict[str, torch.Tensor]:
    """A torchvision-layout AlexNet file holding random convolution weights (features only)."""
    from torchvision.models import alexnet

    torch.manual_seed(1)
    full = alexnet(weights=None).state_dict()
    state = {k: v for k, v in full.items() if k.startswith("features.")}
    torch.save(state, path)
    return state
