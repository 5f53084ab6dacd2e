"""Statistics of a ranking study: rank distribution, Friedman test, pairwise Wilcoxon with Holm.

Each vote (one rater ranking the K results of one image) is a block of the Friedman test. Votes of
one rater are not independent of each other, so p-values are a guide, as in the papers' studies.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from spsr.user_study.key import StudyKey
from spsr.user_study.prng import label_permutation
from spsr.user_study.votes import VoteFile


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman's test that all methods share one rank distribution.

    Attributes:
        statistic: chi-square statistic.
        p_value: its p-value (chi-square with K-1 degrees of freedom).
        n_blocks: number of votes (rater × image).
        k: number of methods.
    """

    statistic: float
    p_value: float
    n_blocks: int
    k: int


@dataclass(frozen=True)
class PairwiseResult:
    """Wilcoxon signed-rank test on the rank differences of two methods over the same votes.

    Attributes:
        method_a: first method.
        method_b: second method.
        mean_rank_a: mean rank of ``method_a`` (lower is better).
        mean_rank_b: mean rank of ``method_b``.
        a_better: votes where ``method_a`` was ranked above ``method_b``.
        b_better: votes where ``method_b`` was ranked above ``method_a``.
        statistic: the Wilcoxon statistic (NaN when the test could not run).
        p_value: raw two-sided p-value.
        p_holm: Holm-adjusted p-value over all pairs.
        significant: ``p_holm < alpha``.
    """

    method_a: str
    method_b: str
    mean_rank_a: float
    mean_rank_b: float
    a_better: int
    b_better: int
    statistic: float
    p_value: float
    p_holm: float
    significant: bool


def rank_matrix(key: StudyKey, files: tuple[VoteFile, ...] | list[VoteFile]) -> np.ndarray:
    """Every vote as the rank each method received.

    Args:
        key: the answer key.
        files: accepted vote files.

    Returns:
        ``(n_votes, K)`` int array: row = one rater's ranking of one image, column = method index.
    """
    rows: list[list[int]] = []
    for vote_file in files:
        for image_index in sorted(vote_file.votes):
            ranks_by_label = vote_file.votes[image_index]
            perm = label_permutation(key.k, key.seed, vote_file.rater, image_index)
            row = [0] * key.k
            for label, rank in enumerate(ranks_by_label):
                row[key.method_of_slot(image_index, perm[label])] = rank
            rows.append(row)
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), key.k)


def rank_counts(ranks: np.ndarray, k: int) -> np.ndarray:
    """How often each method received each rank.

    Args:
        ranks: ``(n_votes, K)`` rank matrix.
        k: number of methods.

    Returns:
        ``(K, K)`` int array: ``counts[method, rank - 1]``.
    """
    counts = np.zeros((k, k), dtype=np.int64)
    for method in range(k):
        counts[method] = np.bincount(ranks[:, method] - 1, minlength=k)[:k]
    return counts


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni step-down adjustment.

    Args:
        p_values: raw p-values (NaN stays NaN and is not counted).

    Returns:
        adjusted p-values in the input order, monotone in the raw order, capped at 1.
    """
    valid = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    valid.sort()
    m = len(valid)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for step, (p, i) in enumerate(valid):
        running = max(running, min(1.0, (m - step) * p))
        adjusted[i] = running
    return adjusted


def friedman(ranks: np.ndarray) -> FriedmanResult | None:
    """Friedman test over votes (blocks) × methods.

    Args:
        ranks: ``(n_votes, K)`` rank matrix.

    Returns:
        the result, or None with fewer than 3 methods or 2 votes (the test is undefined there).
    """
    from scipy import stats

    n, k = ranks.shape
    if k < 3 or n < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.friedmanchisquare(*(ranks[:, j] for j in range(k)))
    return FriedmanResult(float(result.statistic), float(result.pvalue), n, k)


def pairwise_wilcoxon(
    ranks: np.ndarray, methods: tuple[str, ...], alpha: float = 0.05
) -> list[PairwiseResult]:
    """Wilcoxon signed-rank test for every pair of methods, Holm-corrected.

    Args:
        ranks: ``(n_votes, K)`` rank matrix.
        methods: method names, by column.
        alpha: family-wise significance level.

    Returns:
        one result per pair, in ``itertools.combinations`` order; empty with fewer than 2 votes.
    """
    from scipy import stats

    n, k = ranks.shape
    if n < 2:
        return []
    raw: list[tuple[int, int, float, float]] = []
    for a, b in combinations(range(k), 2):
        diff = ranks[:, a] - ranks[:, b]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = stats.wilcoxon(diff)
            raw.append((a, b, float(result.statistic), float(result.pvalue)))
        except ValueError:
            raw.append((a, b, math.nan, math.nan))
    adjusted = holm([p for *_, p in raw])
    means = ranks.mean(axis=0)
    return [
        PairwiseResult(
            method_a=methods[a],
            method_b=methods[b],
            mean_rank_a=float(means[a]),
            mean_rank_b=float(means[b]),
            a_better=int((ranks[:, a] < ranks[:, b]).sum()),
            b_better=int((ranks[:, b] < ranks[:, a]).sum()),
            statistic=statistic,
            p_value=p,
            p_holm=p_adj,
            significant=bool(p_adj < alpha) if not math.isnan(p_adj) else False,
        )
        for (a, b, statistic, p), p_adj in zip(raw, adjusted, strict=True)
    ]
