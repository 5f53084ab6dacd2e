"""User study: a static HTML ranking sheet (``build_study``) and its tally (``tally_files``)."""

from spsr.study.chart import draw_rank_chart, save_chart
from spsr.study.crops import CropBox, parse_crop
from spsr.study.key import StudyKey, load_key
from spsr.study.prng import label_permutation, presentation_order
from spsr.study.sheet import StudyBuild, build_study, default_key_path
from spsr.study.tally import StudyTally, tally_files, tally_study
from spsr.study.votes import VoteCollection, collect_votes

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
