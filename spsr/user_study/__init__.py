"""User study: a static HTML ranking sheet (``build_study``) and its tally (``tally_files``).

The names below load their submodule on first use (PEP 562), so a command that only needs the
sheet's default texts does not pay for the chart's font and drawing imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spsr.user_study.chart import draw_rank_chart, save_chart
    from spsr.user_study.crops import CropBox, parse_crop
    from spsr.user_study.key import StudyKey, load_key
    from spsr.user_study.prng import label_permutation, presentation_order
    from spsr.user_study.sheet import StudyBuild, build_study, default_key_path
    from spsr.user_study.tally import StudyTally, tally_files, tally_study
    from spsr.user_study.votes import VoteCollection, collect_votes

_WHERE = {
    "draw_rank_chart": "chart", "save_chart": "chart",
    "CropBox": "crops", "parse_crop": "crops",
    "StudyKey": "key", "load_key": "key",
    "label_permutation": "prng", "presentation_order": "prng",
    "StudyBuild": "sheet", "build_study": "sheet", "default_key_path": "sheet",
    "StudyTally": "tally", "tally_files": "tally", "tally_study": "tally",
    "VoteCollection": "votes", "collect_votes": "votes",
}

__all__ = [
    "CropBox",
    "StudyBuild",
    "StudyKey",
    "StudyTally",
    "VoteCollection",
    "build_study",
    "collect_votes",
    "default_key_path",
    "draw_rank_chart",
    "label_permutation",
    "load_key",
    "parse_crop",
    "presentation_order",
    "save_chart",
    "tally_files",
    "tally_study",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"spsr.user_study.{module}"), name)
