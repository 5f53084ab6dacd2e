"""The study PRNG: known hash vectors, permutations, and agreement with the page's JS (node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from importlib import resources

import pytest

from spsr.user_study.prng import (
    fnv1a32,
    label_name,
    label_permutation,
    mulberry32,
    presentation_order,
)


def test_fnv1a32_matches_published_vectors() -> None:
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


def test_mulberry32_is_32_bit_and_deterministic() -> None:
    first = mulberry32(12345)
    values = [next(first) for _ in range(1000)]
    again = mulberry32(12345)
    assert values == [next(again) for _ in range(1000)]
    assert all(0 <= v < 2**32 for v in values)
    assert len(set(values)) == 1000
    assert max(values) > 2**31  # the full unsigned range is used


def test_label_permutation_is_a_permutation_that_depends_on_every_input() -> None:
    base = label_permutation(6, 99, "rater", 3)
    assert sorted(base) == list(range(6))
    assert label_permutation(6, 99, "rater", 3) == base
    variants = [
        label_permutation(6, 100, "rater", 3),
        label_permutation(6, 99, "rater2", 3),
        label_permutation(6, 99, "rater", 4),
    ]
    assert any(v != base for v in variants)
    # Regression vector: changing it breaks every study already handed out.
    assert label_permutation(5, 1, "a", 0) == [3, 0, 4, 2, 1]


def test_label_permutations_are_close_to_uniform() -> None:
    counts = Counter(
        tuple(label_permutation(3, 7, f"rater{r}", i)) for r in range(40) for i in range(30)
    )
    assert len(counts) == 6
    assert all(150 <= c <= 250 for c in counts.values())  # 1200 draws, 200 expected each


def test_presentation_order_covers_every_image() -> None:
    order = presentation_order(25, 3, "bob")
    assert sorted(order) == list(range(25)) and order != list(range(25))


def test_label_names_go_past_z() -> None:
    assert [label_name(i) for i in (0, 1, 25, 26, 27, 51, 52)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "AZ",
        "BA",
    ]


@pytest.mark.skipif(
    shutil.which("node") is None, reason="node not installed; the browser test checks this too"
)
def test_page_prng_block_matches_python_under_node() -> None:
    page = resources.files("spsr").joinpath("assets/study/page.html").read_text(encoding="utf-8")
    block = page[page.index("// BEGIN prng") : page.index("// END prng")]
    cases = [
        (k, seed, rater, image)
        for k in (2, 4, 9, 30)
        for seed in (0, 5, 2**32 - 1)
        for rater in ("alice", "Zoë 測試 🙂")
        for image in (0, 7, 1000)
    ]
    script = (
        block + f"\nconst cases = {json.dumps(cases)};\n"
        "console.log(JSON.stringify({perms: cases.map(c => labelPermutation(...c)),"
        " order: presentationOrder(50, 11, 'Zoë 測試 🙂'),"
        " names: [0, 25, 26, 701].map(labelName)}));"
    )
    out = json.loads(
        subprocess.run(
            ["node", "-e", script], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )
    assert out["perms"] == [label_permutation(*case) for case in cases]
    assert out["order"] == presentation_order(50, 11, "Zoë 測試 🙂")
    assert out["names"] == [label_name(i) for i in (0, 25, 26, 701)]
