"""The one loader of the LPIPS network (AlexNet, v0.1), shared by the LPIPS loss and the metric.

The `lpips` package ships its calibrated linear layers (``weights/v0.1/alex.pth``) but takes the
AlexNet trunk from torchvision's ImageNet weights. Here the trunk is built without weights and filled
from a local file: an explicit path, or torchvision's cache
(``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``, ``~/.cache/torch`` when TORCH_HOME is
unset), which :mod:`spsr.weights` fills from torchvision's URL on first use (SHA-256 checked) unless
network access is off; then a missing file raises :class:`MissingWeightsError`.

LPIPS expects inputs in [-1, 1]; :func:`lpips_distance` maps the library's [0, 1] tensors.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

from spsr.errors import CheckpointError, MissingWeightsError
from spsr.weights.catalog import spec
from spsr.weights.fetch import Need, ensure_file
from spsr.weights.kinds import load_torch_state

ALEXNET_FILENAME = "alexnet-owt-7be5be79.pth"
# torchvision ``features.<i>`` conv index -> lpips trunk slice holding it.
_ALEX_SLICE_OF_CONV = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}



def alexnet_need(path: str | None, option: str, purpose: str = "LPIPS") -> Need:
    """The AlexNet ImageNet weights LPIPS loads: ``path`` if given, else torchvision's cache."""
    return Need(spec("alexnet"), path or None, option, purpose)

def default_alexnet_path() -> Path:
    """Where torchvision caches AlexNet's ImageNet weights (honours ``TORCH_HOME``)."""
    return spec("alexnet").cache_path


def find_alexnet_weights(
    path: str | os.PathLike[str] | None = None, option: str = "--lpips-backbone PATH"
) -> Path:
    """The AlexNet weights file to use: ``path`` if given, else torchvision's cache (fetched from
    torchvision's URL when missing or corrupt, unless network access is off).

    Args:
        path: explicit weights file (torchvision's AlexNet state dict).
        option: the option that supplies the file, for messages.

    Returns:
        An existing file.

    Raises:
        MissingWeightsError: the file does not exist and cannot be fetched.
    """
    return ensure_file(Need(spec("alexnet"), None if path is None else str(path), option, "LPIPS"))


def _alexnet_trunk_state(path: Path) -> dict[str, torch.Tensor]:
    """Read torchvision AlexNet weights and rename them to the lpips trunk's keys."""
    state = load_torch_state(
        path, "torchvision's AlexNet weights", f"LPIPS takes torchvision's {ALEXNET_FILENAME}"
    )
    renamed: dict[str, torch.Tensor] = {}
    for conv, slice_no in _ALEX_SLICE_OF_CONV.items():
        for part in ("weight", "bias"):
            key = f"features.{conv}.{part}"
            if key not in state:
                raise CheckpointError(f"{path} is not a torchvision AlexNet state dict (no {key})")
            renamed[f"net.slice{slice_no}.{conv}.{part}"] = state[key]
    return renamed


def load_lpips_alex(
    weights: str | os.PathLike[str] | None = None,
    *,
    random_backbone: bool = False,
    device: torch.device | str = "cpu",
    option: str = "--lpips-backbone PATH",
) -> nn.Module:
    """Build the LPIPS v0.1 AlexNet network, frozen and in eval mode.

    Args:
        weights: AlexNet ImageNet weights file; None looks in torchvision's cache.
        random_backbone: keep a randomly initialised trunk instead (tests only: the distances are
            then not LPIPS).
        device: where to put the network.
        option: the option that supplies the AlexNet file, for messages.

    Returns:
        An ``lpips.LPIPS`` module; call it on two tensors in [-1, 1] (or use
        :func:`lpips_distance`).

    Raises:
        MissingWeightsError: AlexNet or the lpips linear layers are not available locally.
        CheckpointError: the AlexNet file exists but is not usable.
    """
    import lpips  # imported here: it pulls in torchvision, which is slow to import

    trunk_state = None if random_backbone else _alexnet_trunk_state(find_alexnet_weights(weights, option))
    lin_path = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    if not lin_path.is_file():
        raise MissingWeightsError(f"the lpips package has no linear-layer weights at {lin_path}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's 'pretrained is deprecated'
        net = lpips.LPIPS(
            net="alex", version="0.1", pretrained=True, pnet_rand=True, model_path=str(lin_path),
            verbose=False,
        )
    if trunk_state is not None:
        missing, unexpected = net.load_state_dict(trunk_state, strict=False)
        if unexpected or any(k.startswith("net.") for k in missing):
            wrong = unexpected or missing
            raise CheckpointError(f"AlexNet weights do not fit the LPIPS trunk: {wrong}")
    net.requires_grad_(False)
    return net.eval().to(device)


def lpips_distance(net: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS distance per image between two batches in the library's [0, 1] range.

    Args:
        net: the module from :func:`load_lpips_alex`.
        a: images ``(N, 3, H, W)`` in [0, 1].
        b: images of the same shape in [0, 1].

    Returns:
        Distances ``(N,)``; differentiable with respect to ``a`` and ``b``.
    """
    return net(a * 2.0 - 1.0, b * 2.0 - 1.0).flatten()
