"""Model files spsr fetches (ImageNet weights from torchvision's URLs, Ma et al.'s ``model.mat``):
what they are (:mod:`spsr.weights.catalog`), how they are downloaded and verified
(:mod:`spsr.weights.fetch`), and how a weights file of the wrong kind is recognised
(:mod:`spsr.weights.kinds`)."""

from spsr.weights.catalog import (
    METRIC_FILES,
    SPECS,
    metric_needs,
    needs_for,
    spec,
    spsr_cache_dir,
    torch_checkpoint_dir,
    training_needs,
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
    "METRIC_FILES", "SPECS", "DownloadError", "FetchSettings", "FileSpec", "MissingFilesError",
    "Need", "current_settings", "digest_matches", "download", "ensure_file", "ensure_files", "env_offline",
    "fetch_settings", "file_digest", "metric_needs", "missing", "needs_for", "spec", "spsr_cache_dir",
    "torch_checkpoint_dir", "training_needs",
]
