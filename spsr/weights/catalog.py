"""Every model file spsr can fetch and where it is cached.

The catalog knows files, not their users: a metric declares the files it loads in its
:class:`~spsr.metrics.metric.Metric` (``files``), a training stage in its ``needs(cfg)``
(:class:`spsr.train.stage.Stage`), and :mod:`spsr.train.needs` gathers them for ``spsr fetch``.

Cache folders, in order of precedence:

* torchvision's ImageNet weights (AlexNet for LPIPS, VGG19, ResNet18): torchvision's own cache,
  ``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``, else
  ``$XDG_CACHE_HOME/torch/hub/checkpoints``, else ``~/.cache/torch/hub/checkpoints``; files fetched
  by spsr, torchvision or pyiqa are shared. The file name carries the start of its SHA-256, which is
  checked (as torchvision does).
* Ma et al.'s ``model.mat``: ``$SPSR_CACHE/nrqm``, else ``$XDG_CACHE_HOME/spsr/nrqm``, else
  ``~/.cache/spsr/nrqm``; checked against its git blob id in github.com/chaoma99/sr-metric.

An explicit path option (``--lpips-backbone``, ``--ma-model``, ``--vgg-weights`` ...) always wins and
is used as given.
"""

from __future__ import annotations

import os
from pathlib import Path

from spsr.weights.fetch import FileSpec


def spsr_cache_dir() -> Path:
    """The cache folder of spsr: ``$SPSR_CACHE``, else ``$XDG_CACHE_HOME/spsr``, else
    ``~/.cache/spsr``."""
    if os.environ.get("SPSR_CACHE"):
        return Path(os.environ["SPSR_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "spsr"


def torch_checkpoint_dir() -> Path:
    """torchvision's weights cache: ``torch.hub.get_dir()/checkpoints`` (honours ``TORCH_HOME``)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _torchvision(key: str, title: str, filename: str) -> FileSpec:
    prefix = filename.rsplit("-", 1)[1].split(".", 1)[0]
    return FileSpec(
        key, title, f"https://download.pytorch.org/models/{filename}", filename, "sha256-prefix",
        prefix, torch_checkpoint_dir, "TORCH_HOME",
    )


# torchvision's IMAGENET1K_V1 weights (the URLs of AlexNet_Weights / VGG19_Weights /
# ResNet18_Weights, pinned by a test).
ALEXNET = _torchvision("alexnet", "AlexNet ImageNet weights", "alexnet-owt-7be5be79.pth")
VGG19 = _torchvision("vgg19", "VGG19 ImageNet weights", "vgg19-dcbb9e9d.pth")
RESNET18 = _torchvision("resnet18", "ResNet18 ImageNet weights", "resnet18-f37072fd.pth")
MA_MODEL = FileSpec(
    "ma-model", "Ma et al.'s model.mat",
    "https://raw.githubusercontent.com/chaoma99/sr-metric/master/model.mat", "model.mat",
    "git-blob-sha1", "a852aefb6a49e52703044fee4fa60c3f5b8d5adc",
    lambda: spsr_cache_dir() / "nrqm", "SPSR_CACHE",
)
SPECS: dict[str, FileSpec] = {s.key: s for s in (ALEXNET, VGG19, RESNET18, MA_MODEL)}


def spec(key: str) -> FileSpec:
    """The registered spec of ``key``, looked up at call time (tests may register their own)."""
    return SPECS[key]
