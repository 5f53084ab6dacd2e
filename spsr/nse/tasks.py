"""The NSE pretext tasks by name, and the one place that builds their heads (TPAMI 2021 §4.2).

A task module (:class:`~spsr.nse.contrastive.ContrastiveTask` or
:class:`~spsr.nse.jigsaw.JigsawTask`) owns the extractor F and the task's head: the predictor P of
contrastive prediction, or the classifier J of the jigsaw. Training (the ``nse`` stage), the
evaluation's re-fit and the head's file (:mod:`spsr.nse.files`) all build heads here.
"""

from __future__ import annotations

from spsr.errors import ConfigError
from spsr.nse import NSE_TASKS
from spsr.nse.contrastive import DEFAULT_TAU, ContrastiveTask
from spsr.nse.extractor import ContrastivePredictor, JigsawHead, NeuralStructureExtractor
from spsr.nse.geometry import sampling_offsets, separation
from spsr.nse.jigsaw import JigsawTask

PretextTask = ContrastiveTask | JigsawTask
TaskHead = ContrastivePredictor | JigsawHead


def check_task(task: str, what: str = "NSE task") -> None:
    """Raise :class:`ConfigError` unless ``task`` is one of :data:`spsr.nse.NSE_TASKS`."""
    if task not in NSE_TASKS:
        raise ConfigError(f"unknown {what} {task!r}; choose {' or '.join(NSE_TASKS)}")


def new_head(
    task: str, channels: int, *, sampling: str = "horizontal", hidden: int = 256
) -> TaskHead:
    """A freshly initialised head for ``task`` on ``channels``-channel structure features.

    Args:
        task: ``contrastive`` (a predictor over the sampling's M neighbours) or ``jigsaw``.
        channels: channels of the extractor's features.
        sampling: contrastive neighbours (sets M); ignored by the jigsaw.
        hidden: width of the hidden layers.
    """
    check_task(task)
    if task == "contrastive":
        inputs = len(sampling_offsets(sampling, separation()))
        return ContrastivePredictor(channels, inputs, hidden)
    return JigsawHead(channels, hidden)


def make_task(
    extractor: NeuralStructureExtractor,
    head: TaskHead,
    *,
    sampling: str = "horizontal",
    tau: float = DEFAULT_TAU,
    per_image: int = 8,
) -> PretextTask:
    """The task module of ``head`` (a predictor: contrastive prediction; a jigsaw head: jigsaw).

    Args:
        extractor: the NSE F.
        head: from :func:`new_head` (or loaded from a file).
        sampling: contrastive neighbours.
        tau: τ of the contrastive similarity exp(τ·cos).
        per_image: anchors (contrastive) or puzzles (jigsaw) drawn per crop and pass.
    """
    if isinstance(head, ContrastivePredictor):
        return ContrastiveTask(extractor, head, sampling, tau, per_image)
    return JigsawTask(extractor, head, per_image)


def task_head(task: PretextTask) -> TaskHead:
    """The head of a task module: the predictor P or the jigsaw classifier J."""
    return task.predictor if isinstance(task, ContrastiveTask) else task.head


def task_name(task: PretextTask) -> str:
    """``contrastive`` or ``jigsaw``."""
    return "contrastive" if isinstance(task, ContrastiveTask) else "jigsaw"
