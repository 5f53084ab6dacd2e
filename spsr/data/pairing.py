"""The one rule that pairs an image with its reference by file name.

``spsr eval`` pairs SR results with HR images, ``spsr user-study-sheet`` each method's outputs
with the HR references, ``spsr gradmap --hr`` LR inputs with HR references; all three use
:func:`match_stem`. SR tools name their outputs after the input plus a suffix
(``baboon_x4.png``, ``baboon_SPSR.png``, ``baboon_x4_SR.png``, ``baboon-rlt.png``, DIV2K's
``0801x4.png``), and references sometimes carry one (``baboon_HR.png``, ``baboon_GT.png``).

A file belongs to the reference stem (the reference's stem less ``_HR`` / ``_GT``,
:func:`canonical_reference_stem`) found by the first rule that gives exactly one:

1. the same stem;
2. the same stem ignoring case;
3. the longest reference stem the file's stem starts with, followed by a separator
   (``_ - . `` or a space), ignoring case: ``img_10_x4`` → ``img_10``, not ``img_1``;
4. the same stem once SR tools' suffixes are removed (:func:`pairing_key`): ``0801x4`` → ``0801``.

Otherwise it pairs with nothing (``baboonx4``, ``img_100`` next to ``img_1``/``img_10``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_REFERENCE_SUFFIX = re.compile(r"[_\-. ](hr|gt)$", re.IGNORECASE)
# Trailing tokens that SR tools add to file names: baby_x4_SR.png, baby_out.png, baby-SPSR.png ...
_TOOL_SUFFIX = re.compile(
    r"[_\-. ](x\d+|\d+x|sr|out|output|result|rlt|hr|gt|lr|bicubic|bic|spsr|esrgan|srgan|rrdb|"
    r"fake|real|pred|restored|upscaled|upscale)$",
    re.IGNORECASE,
)
_DIV2K_SCALE = re.compile(r"(?<=\d)x\d+$", re.IGNORECASE)  # 0801x4 → 0801
SEPARATORS = "_-. "


def canonical_reference_stem(stem: str) -> str:
    """A reference's stem less ``_HR`` / ``_GT`` style suffixes (``baboon_HR`` → ``baboon``;
    ``HR`` stays ``HR``)."""
    while True:
        stripped = _REFERENCE_SUFFIX.sub("", stem)
        if stripped == stem or not stripped:
            return stem
        stem = stripped


def pairing_key(stem: str) -> str:
    """Name stem with SR tools' suffixes removed, lowercased: ``Baby_x4_SR`` → ``baby``."""
    key = stem
    while True:
        stripped = _DIV2K_SCALE.sub("", _TOOL_SUFFIX.sub("", key))
        if stripped == key or not stripped:
            return key.lower()
        key = stripped


def match_stem(stem: str, references: Sequence[str]) -> str | None:
    """The reference stem a file of stem ``stem`` belongs to (the module docstring's rules), or
    None when no rule gives exactly one."""
    if stem in references:
        return stem
    folded = stem.casefold()
    same = {r for r in references if r.casefold() == folded}
    if len(same) == 1:
        return same.pop()
    prefixed: dict[str, int] = {}
    for r in references:
        rf = r.casefold()
        if folded.startswith(rf) and len(folded) > len(rf) and folded[len(rf)] in SEPARATORS:
            prefixed[r] = len(rf)
    if prefixed:
        longest = max(prefixed.values())
        best = {r for r, n in prefixed.items() if n == longest}
        if len(best) == 1:
            return best.pop()
    key = pairing_key(stem)
    keyed = {r for r in references if pairing_key(r) == key}
    return keyed.pop() if len(keyed) == 1 else None
