"""Model files spsr fetches (ImageNet weights from torchvision's URLs, Ma et al.'s ``model.mat``):
what they are (:mod:`spsr.weights.catalog`), how they are downloaded and verified
(:mod:`spsr.weights.fetch`), and how a weights file of the wrong kind is recognised
(:mod:`spsr.weights.kinds`)."""

from spsr.weights.catalog import (
    SPECS,
    spec,
    spsr_cache_dir,
    torch_checkpoint_dir,
)
from spsr.weights.fetch import (
    DownloadError,
    FetchSettings,
    FileSpec,
    MissingFilesError,
    Need,
    current_settings,
    digest_matches,
    download,
    ensure_file,
    ensure_files,
    env_offline,
    fetch_settings,
    file_digest,
    missing,
)

__all__ = [
    "SPECS", "DownloadError", "FetchSettings", "FileSpec", "MissingFilesError",
    "Need", "current_settings", "digest_matches", "download", "ensure_file", "ensure_files", "env_offline",
    "fetch_settings", "file_digest", "missing", "spec", "spsr_cache_dir",
    "torch_checkpoint_dir",
]
