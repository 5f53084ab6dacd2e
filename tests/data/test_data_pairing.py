"""One pairing rule by file name for spsr eval, user-study sheets and gradmap --hr."""

from __future__ import annotations

import pytest

from spsr.data.pairing import canonical_reference_stem, match_stem, pairing_key


@pytest.mark.parametrize(
    "stem, expected",
    [
        ("bird", "bird"),            # 1. the same stem
        ("BIRD", "bird"),            # 2. ignoring case
        ("img_10_x4", "img_10"),     # 3. the longest stem followed by a separator
        ("img_1_x4_SR", "img_1"),
        ("Baboon-rlt", "baboon"),
        ("0801x4", "0801"),          # 4. SR tools' suffixes removed (DIV2K's scale suffix)
        ("baboonx4", None),          # no separator, no known suffix
        ("img_100", None),
        ("zebra_x4", None),
    ],
)
def test_match_stem_rules_in_order(stem: str, expected: str | None) -> None:
    assert match_stem(stem, ["bird", "img_1", "img_10", "baboon", "0801"]) == expected


def test_an_exact_stem_wins_over_a_case_fold_and_ambiguity_pairs_nothing() -> None:
    assert match_stem("Bird", ["bird", "Bird"]) == "Bird"
    assert match_stem("BIRD", ["bird", "Bird"]) is None  # two references fold alike
    assert match_stem("head_x4", [canonical_reference_stem("head_GT")]) == "head"  # rule 3
    assert match_stem("head_x4", ["head_GT"]) == "head_GT"  # rule 4: both keys are "head"


def test_keys_and_reference_stems() -> None:
    assert pairing_key("Baby_x4_SR") == "baby" and pairing_key("x4") == "x4"
    assert canonical_reference_stem("img_001_GT_HR") == "img_001"
    assert canonical_reference_stem("HR") == "HR"
