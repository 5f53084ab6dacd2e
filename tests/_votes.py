"""Vote files as the user-study page writes them, and a study key to tally them with (shared by
tests/user_study/test_study_tally.py, tests/test_untrusted_json.py and tests/test_write_failures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spsr.user_study import label_permutation
from spsr.user_study.key import KeyImage, StudyKey, write_key

METHODS = ("SPSR", "ESRGAN", "SRGAN")


@pytest.fixture()
def key_path(tmp_path: Path) -> Path:
    images = tuple(
        KeyImage(stem=f"img{i}", slots=slots)
        for i, slots in enumerate([(0, 1, 2), (2, 0, 1), (1, 2, 0), (0, 2, 1)])
    )
    path = tmp_path / "study-key.json"
    write_key(StudyKey(study_id="abc123", seed=77, methods=METHODS, images=images), path)
    return path


def write_votes(
    path: Path,
    key: StudyKey,
    rater: str,
    method_ranks: dict[int, list[int]],
    exported_at: str = "2026-01-01T10:00:00.000Z",
    **overrides: object,
) -> Path:
    """A vote file as the page writes it, from method_ranks[image][method] = rank."""
    votes = []
    for image, ranks in method_ranks.items():
        perm = label_permutation(key.k, key.seed, rater, image)
        votes.append(
            {
                "image": image,
                "ranks": [ranks[key.method_of_slot(image, perm[label])] for label in range(key.k)],
            }
        )
    payload = {
        "format": "spsr-user-study-votes",
        "version": 1,
        "study_id": key.study_id,
        "seed": key.seed,
        "rater": rater,
        "k": key.k,
        "n_images": len(key.images),
        "complete": len(votes) == len(key.images),
        "exported_at": exported_at,
        "votes": votes,
        **overrides,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path
