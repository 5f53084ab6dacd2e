"""``tally``: from the key and the exported vote files to the study's results."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spsr.user_study.key import StudyKey, load_key
from spsr.user_study.stats import (
    FriedmanResult,
    PairwiseResult,
    friedman,
    pairwise_wilcoxon,
    rank_counts,
    rank_matrix,
)
from spsr.user_study.votes import VoteCollection, collect_votes


@dataclass(frozen=True)
class StudyTally:
    """The results of a study.

    Attributes:
        key: the answer key.
        collection: the vote files accepted, rejected and de-duplicated.
        ranks: ``(n_votes, K)`` rank per vote and method.
        counts: ``(K, K)`` votes per method and rank (``counts[m, r - 1]``).
        friedman: Friedman test, or None when undefined (K < 3 or fewer than 2 votes).
        pairwise: Wilcoxon signed-rank per pair of methods, Holm-corrected.
        alpha: significance level used for ``pairwise[i].significant``.
    """

    key: StudyKey
    collection: VoteCollection
    ranks: np.ndarray
    counts: np.ndarray
    friedman: FriedmanResult | None
    pairwise: list[PairwiseResult]
    alpha: float

    @property
    def n_votes(self) -> int:
        """Number of counted votes (one rater ranking one image)."""
        return int(self.ranks.shape[0])

    @property
    def n_raters(self) -> int:
        """Number of raters counted (one file each)."""
        return len(self.collection.files)

    @property
    def n_images_voted(self) -> int:
        """Number of distinct images with at least one vote."""
        return len({image for f in self.collection.files for image in f.votes})

    @property
    def mean_ranks(self) -> np.ndarray:
        """Mean rank per method (NaN without votes)."""
        if self.n_votes == 0:
            return np.full(self.key.k, np.nan)
        return self.ranks.mean(axis=0)

    def method_order(self) -> list[int]:
        """Method indices from best (lowest mean rank) to worst; ties keep the key's order."""
        means = self.mean_ranks
        return sorted(
            range(self.key.k), key=lambda m: (math.inf if math.isnan(means[m]) else means[m], m)
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``--json`` output)."""

        def number(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        k = self.key.k
        return {
            "study_id": self.key.study_id,
            "methods": list(self.key.methods),
            "votes": self.n_votes,
            "raters": self.n_raters,
            "images": len(self.key.images),
            "images_voted": self.n_images_voted,
            "rank_counts": {
                self.key.methods[m]: {str(r + 1): int(self.counts[m, r]) for r in range(k)}
                for m in range(k)
            },
            "mean_rank": {self.key.methods[m]: number(float(self.mean_ranks[m])) for m in range(k)},
            "ranking": [self.key.methods[m] for m in self.method_order()],
            "friedman": None
            if self.friedman is None
            else {
                "statistic": self.friedman.statistic,
                "p_value": self.friedman.p_value,
                "blocks": self.friedman.n_blocks,
                "k": self.friedman.k,
            },
            "pairwise": [
                {
                    "a": p.method_a,
                    "b": p.method_b,
                    "mean_rank_a": p.mean_rank_a,
                    "mean_rank_b": p.mean_rank_b,
                    "a_better": p.a_better,
                    "b_better": p.b_better,
                    "statistic": number(p.statistic),
                    "p_value": number(p.p_value),
                    "p_holm": number(p.p_holm),
                    "significant": p.significant,
                }
                for p in self.pairwise
            ],
            "alpha": self.alpha,
            "files": [
                {
                    "path": str(f.path),
                    "rater": f.rater,
                    "votes": len(f.votes),
                    "complete": len(f.votes) == len(self.key.images),
                }
                for f in self.collection.files
            ],
            "rejected": [
                {"path": str(r.path), "reason": r.reason} for r in self.collection.rejected
            ],
            "duplicates": [
                {"rater": d.rater, "kept": str(d.kept), "ignored": [str(p) for p in d.ignored]}
                for d in self.collection.duplicates
            ],
        }


def tally_study(key: StudyKey, collection: VoteCollection, alpha: float = 0.05) -> StudyTally:
    """Count ranks per method and test the differences.

    Args:
        key: the answer key.
        collection: the vote files (see ``collect_votes``).
        alpha: family-wise significance level of the pairwise tests.

    Returns:
        the tally.
    """
    ranks = rank_matrix(key, collection.files)
    return StudyTally(
        key=key,
        collection=collection,
        ranks=ranks,
        counts=rank_counts(ranks, key.k),
        friedman=friedman(ranks),
        pairwise=pairwise_wilcoxon(ranks, key.methods, alpha),
        alpha=alpha,
    )


def tally_files(key_path: Path, vote_paths: list[Path], alpha: float = 0.05) -> StudyTally:
    """Load the key, read the vote files (and folders of them) and tally.

    Args:
        key_path: the key written by ``build``.
        vote_paths: vote files and folders holding them.
        alpha: family-wise significance level.

    Returns:
        the tally.

    Raises:
        ConfigError: the key is invalid or a vote path does not exist.
    """
    key = load_key(Path(key_path))
    return tally_study(
        key, collect_votes([Path(p) for p in vote_paths], key, key_path=Path(key_path)), alpha
    )
