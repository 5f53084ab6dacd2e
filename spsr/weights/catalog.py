"""Every model file spsr can fetch, where it is cached, and which files a metric list or a training
configuration needs.

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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spsr.weights.fetch import FileSpec, Need


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

# What each metric needs (the lpips package's linear layers ship inside the lpips wheel).
METRIC_FILES: dict[str, tuple[str, ...]] = {"lpips": ("alexnet",), "ma": ("ma-model",), "pi": ("ma-model",)}


def metric_needs(
    metrics: Iterable[str],
    lpips_backbone: str | None = None,
    ma_model: str | None = None,
    lpips_option: str = "--lpips-backbone PATH",
    ma_option: str = "--ma-model PATH",
) -> list[Need]:
    """The files a ``--metrics`` list needs, each with the option that supplies it."""
    needs: list[Need] = []
    for m in metrics:
        for key in METRIC_FILES.get(m, ()):
            if key == "alexnet":
                needs.append(Need(spec("alexnet"), lpips_backbone or None, lpips_option, f"metric {m}"))
            else:
                needs.append(Need(spec("ma-model"), ma_model or None, ma_option, f"metric {m}"))
    return needs


_PERCEPTUAL_STAGES = ("gan", "structure", "unet")


def training_needs(cfg: Any) -> list[Need]:
    """The ImageNet weights a training configuration (``TrainConfig``) loads before it starts."""
    needs: list[Need] = []
    lo = cfg.loss
    if cfg.stage in _PERCEPTUAL_STAGES and lo.perceptual > 0:
        if lo.perceptual_net == "vgg":
            needs.append(Need(spec("vgg19"), lo.vgg_weights or None,
                              "--vgg-weights PATH (or --perceptual none)", "the VGG19 perceptual loss"))
        elif lo.perceptual_net == "lpips":
            needs.append(Need(spec("alexnet"), lo.lpips_weights or None,
                              "--lpips-weights PATH (or --perceptual none)", "the LPIPS perceptual loss"))
    if cfg.stage == "structure":
        s = cfg.section("structure")
        if s.extractor in ("vgg", "resnet") and not s.random_backbone and (s.beta > 0 or s.gamma > 0):
            file = spec("vgg19" if s.extractor == "vgg" else "resnet18")
            explicit = s.weights or (lo.vgg_weights if s.extractor == "vgg" else "")
            option = "--set structure.weights=PATH" + (" or --vgg-weights PATH" if s.extractor == "vgg" else "")
            needs.append(Need(file, explicit or None, option, "the structure extractor"))
    return needs


def needs_for(names: Iterable[str]) -> list[Need]:
    """The files behind names a user can give ``spsr fetch``: metric names (``lpips``, ``ma``,
    ``pi`` ...), training variants (``g``, ``esrgan``, ``vgg``, ``resnet``, ``u`` ...), file keys
    (``alexnet``, ``vgg19``, ``resnet18``, ``ma-model``) or ``all`` (every file).

    Raises:
        ConfigError: a name that is none of these.
    """
    from spsr.errors import ConfigError
    from spsr.metrics.registry import METRICS
    from spsr.train.variants import preset, variants

    needs: list[Need] = []
    known_variants = variants()
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name == "all":
            needs.extend(Need(s, purpose=s.key) for s in SPECS.values())
        elif name in SPECS:
            needs.append(Need(SPECS[name], purpose=name))
        elif name in METRICS:
            needs.extend(metric_needs([name]))
        elif name in known_variants:
            needs.extend(
                Need(n.spec, None, n.option, f"variant {name}: {n.purpose}")
                for n in training_needs(preset(name))
            )
        else:
            raise ConfigError(
                f"unknown name {raw!r}: give metric names ({', '.join(METRICS)}), training variants "
                f"({', '.join(sorted(known_variants))}), files ({', '.join(SPECS)}) or all"
            )
    return needs
