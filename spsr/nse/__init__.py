"""The neural structure extractor (NSE) of SPSR-P / SPSR-J, its pretext tasks and their evaluation.

TPAMI 2021 §4.1–4.2, §5.2 and App. A–B. The package holds every piece of the NSE:

* :mod:`spsr.nse.extractor`: the network F and the heads of its pretext tasks (App. A);
* :mod:`spsr.nse.geometry`: receptive fields, neighbour offsets and negatives (§4.2);
* :mod:`spsr.nse.contrastive` and :mod:`spsr.nse.jigsaw`: the two pretext tasks (eq. 11–13);
* :mod:`spsr.nse.tasks`: the task names, and the one place that builds a task's head;
* :mod:`spsr.nse.sampling`: random and dense image crops;
* :mod:`spsr.nse.data`: the crop dataset of the ``nse`` stage and in-memory image sets;
* :mod:`spsr.nse.fit`: short in-memory fits of a task (the head re-fit of the evaluation);
* :mod:`spsr.nse.accuracy`: the papers' validation of an NSE (§5.2, App. B.2);
* :mod:`spsr.nse.files`: the ``nse.safetensors`` and ``nse_head.safetensors`` file formats.

Training runs as the ``nse`` stage of the training engine (:mod:`spsr.train.stages.nse`).
This module itself imports no torch: the names below serve the command line and the variant
catalog.
"""

from __future__ import annotations

#: The pretext tasks, by the name ``--task`` and the ``nse.task`` key take (TPAMI 2021 §4.2).
NSE_TASKS: tuple[str, ...] = ("contrastive", "jigsaw")
#: Contrastive neighbours (App. B.1, Fig. 13): left/right, above/below, or all four.
SAMPLINGS: tuple[str, ...] = ("horizontal", "vertical", "cross")
#: Training-crop augmentations of the ``nse`` stage (``nse.augment``). ``flips`` (default): random
#: left-right and up-down flips, which keep horizontal neighbours horizontal, so the ``horizontal``
#: and ``vertical`` sampling tasks stay different objectives (TPAMI 2021 Table 5 / Fig. 14 compare
#: them); ``dihedral``: also 90° rotations (all eight symmetries of the square, which make those
#: two tasks one objective); ``none``. The papers do not describe an augmentation of the NSE crops.
NSE_AUGMENTS: tuple[str, ...] = ("flips", "dihedral", "none")
#: How the evaluation draws samples (``--eval-protocol``): ``paper`` (TPAMI 2021 §5.2 / App. B.2:
#: one target per contrastive feature map, one 2×2 grid per jigsaw patch); ``many-anchors``
#: (16 of each per crop: more samples per pass, a smaller spread over the repeats).
EVAL_PROTOCOLS: tuple[str, ...] = ("paper", "many-anchors")
#: Optimiser steps re-fitting each head before the evaluation, the one default of the API and CLI.
DEFAULT_FIT_STEPS = 1000
