"""Atomic writes: whole files or none, and the user's umask decides the permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from spsr.atomic import atomic_path, write_bytes_atomic, write_text_atomic


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _eval_json(path: Path) -> None:
    from spsr.metrics.score_folders import write_text_atomic as eval_writer

    eval_writer(path, "{}\n")


def _chart(path: Path) -> None:
    from spsr.user_study import draw_rank_chart
    from spsr.user_study.chart import save_chart

    save_chart(draw_rank_chart(["a", "b"], np.array([[1, 0], [0, 1]])), path)


def _nse(path: Path) -> None:
    from spsr.losses.structure import random_nse
    from spsr.nse.files import save_nse

    save_nse(path, random_nse())


def _weights(path: Path) -> None:
    import torch

    from spsr.archs import ArchSpec, build_model
    from spsr.infer import save_weights

    torch.manual_seed(0)
    spec = ArchSpec("srresnet", 2, nf=4, nb=1)
    save_weights(path, build_model(spec), spec)


def _image(path: Path) -> None:
    from spsr.data.image_io import write_image

    write_image(path, np.zeros((4, 4, 3), np.uint8))


WRITERS: dict[str, Callable[[Path], None]] = {
    "eval.json": _eval_json,
    "ranks.png": _chart,
    "nse.safetensors": _nse,
    "model.safetensors": _weights,
    "picture.png": _image,
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_every_writer_gives_files_the_umask_mode(name: str, umask: int, tmp_path: Path) -> None:
    path = tmp_path / name
    WRITERS[name](path)
    assert _mode(path) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind


def test_private_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        write_text_atomic(tmp_path / "key.json", "{}", private=True)
        write_bytes_atomic(tmp_path / "open.bin", b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "key.json") == 0o600 and _mode(tmp_path / "open.bin") == 0o666


def test_study_key_is_private(tmp_path: Path) -> None:
    from spsr.user_study.key import KeyImage, StudyKey, write_key

    key = StudyKey(study_id="s", seed=1, methods=("a", "b"), created="2026-01-01T00:00:00+00:00",
                   folder=str(tmp_path), images=(KeyImage(stem="x", slots=(0, 1)),))
    write_key(key, tmp_path / "k.json")
    assert _mode(tmp_path / "k.json") == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "table.md"
    write_text_atomic(path, "old\n")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("killed mid-write")
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.md"]
    assert write_text_atomic(tmp_path / "new" / "a.txt", "a\r\n").read_bytes() == b"a\r\n"
