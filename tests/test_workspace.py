"""spsr.workspace: the working-folder convention's defaults, and run names as weights."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from spsr.checkpoints.io import ASSET_DIR, BUILTIN_WEIGHTS, resolve_weights, weights_name_note
from spsr.data.image_io import write_image
from spsr.errors import CheckpointError, ConfigError
from spsr.workspace import BENCHMARKS, Workspace, nse_run_name, training_defaults


def _store(path: Path, scale: int) -> Path:
    """A file with a store's ``scale`` attribute (all the convention reads of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["scale"] = scale
    return path


def _run(path: Path, *files: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in files:
        (path / name).write_bytes(b"x")
    return path


def _images(folder: Path, n: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_image(folder / f"{i}.png", np.full((8, 8, 3), 100, np.uint8))
    return folder


def test_store_path_is_named_after_the_first_source_and_the_scale(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    (tmp_path / "DIV2K train").mkdir()
    assert ws.store_path([tmp_path / "DIV2K train"], 4) == tmp_path / "data" / "DIV2K_train_x4.h5"
    assert ws.store_path([tmp_path / "list.txt", tmp_path], 2) == tmp_path / "data" / "list_x2.h5"
    with pytest.raises(ConfigError, match="at least one SRC"):
        ws.store_path([], 4)


def test_default_store_one_none_several_and_by_scale(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with pytest.raises(ConfigError, match=r"no patch store for x4 in .*spsr prepare-data DIR"):
        ws.default_store(4)
    x4 = _store(tmp_path / "data" / "div2k_x4.h5", 4)
    (tmp_path / "data" / "half_x4.h5.partial").write_bytes(b"")  # an unfinished store: not one
    assert ws.default_store(4) == x4 and ws.default_store(None) == x4
    x2 = _store(tmp_path / "data" / "named_oddly.h5", 2)
    assert ws.default_store(4) == x4 and ws.default_store(2) == x2
    with pytest.raises(ConfigError, match=r"2 patch stores in .*named_oddly.*`spsr t STORE.h5`"):
        ws.default_store(None, "spsr t")
    with pytest.raises(ConfigError, match=r"x3.*div2k_x4.h5 is x4.*--scale"):
        ws.default_store(3)
    (tmp_path / "data" / "broken_x3.h5").write_bytes(b"not hdf5")  # its name tells the scale
    assert ws.default_store(3) == tmp_path / "data" / "broken_x3.h5"


def test_a_fresh_run_never_takes_a_folder_holding_a_run(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert ws.fresh_run_dir("g", "spsr train --variant g") == tmp_path / "runs" / "g"
    _run(tmp_path / "runs" / "g", "log.jsonl")  # a run that never checkpointed: reusable
    assert ws.fresh_run_dir("g", "spsr train --variant g") == tmp_path / "runs" / "g"
    _run(tmp_path / "runs" / "g", "model.safetensors")
    with pytest.raises(ConfigError, match=r"already holds a run: `spsr train --variant g --resume` "
                       r"continues it, `spsr train --variant g -o DIR` starts another"):
        ws.fresh_run_dir("g", "spsr train --variant g")
    (tmp_path / "runs" / "file").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        ws.fresh_run_dir("file", "spsr train")


def test_training_defaults_fill_only_what_was_not_given(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    store = _store(tmp_path / "data" / "d_x4.h5", 4)
    found = training_defaults(ws, name="g", command="spsr train --variant g", output=None,
                              resume=False, scale=4, variant="g", wants_init=True)
    assert found.output == tmp_path / "runs" / "g" and found.data == store and found.init is None
    (warning,) = found.warnings
    assert "PSNR-oriented" in warning and "spsr pretrain-psnr" in warning and "--init" in warning

    psnr = _run(tmp_path / "runs" / "psnr", "model.safetensors")
    found = training_defaults(ws, name="g", command="c", output=None, resume=False, scale=4,
                              variant="g", wants_init=True)
    assert found.init == psnr and not found.warnings
    assert any(str(psnr) in note and "--init overrides" in note for note in found.notes)

    given = {"data.path", "run.init"}
    found = training_defaults(ws, name="g", command="c", output=tmp_path / "mine", resume=False,
                              given=given, scale=4, variant="g", wants_init=True)
    assert (found.output, found.data, found.init, found.notes) == (tmp_path / "mine", None, None, [])

    _run(tmp_path / "runs" / "g", "model.safetensors")
    found = training_defaults(ws, name="g", command="c", output=None, resume=True, scale=4,
                              variant="g", wants_init=True)  # resume: the run keeps its own
    assert (found.output, found.data, found.init) == (tmp_path / "runs" / "g", None, None)
    psnr_only = training_defaults(ws, name="psnr2", command="c", output=None, resume=False,
                                  scale=4, variant="psnr", wants_init=False)
    assert psnr_only.init is None and not psnr_only.warnings


def test_structure_variants_find_their_nse_run_or_say_what_to_run(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    _store(tmp_path / "data" / "d_x4.h5", 4)
    for variant, task in (("p", "contrastive"), ("j", "jigsaw")):
        with pytest.raises(ConfigError, match=rf"spsr pretrain-nse --task {task}.*{nse_run_name(task)}"
                           r".*--nse RUN"):
            training_defaults(ws, name=variant, command="c", output=None, resume=False, scale=4,
                              variant=variant)
    nse = _run(tmp_path / "runs" / "nse-contrastive", "nse.safetensors")
    found = training_defaults(ws, name="p", command="c", output=None, resume=False, scale=4,
                              variant="p")
    assert found.nse == nse
    assert training_defaults(ws, name="p", command="c", output=None, resume=False, scale=4,
                             variant="p", given={"structure.nse"}).nse is None
    assert training_defaults(ws, name="r", command="c", output=None, resume=False, scale=4,
                             variant="r").nse is None  # SPSR-R needs no NSE


def test_benchmarks_in_table_order_as_name_hr_or_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SPSR_DATASETS", raising=False)
    ws = Workspace(tmp_path)
    assert ws.benchmarks() == []
    with pytest.raises(ConfigError, match=r"no benchmark found in .*datasets/.*Set5, Set14, BSD100"):
        ws.default_benchmarks()
    d = tmp_path / "datasets"
    _images(d / "Urban100" / "HR")
    _images(d / "set5")  # any case; images directly in the folder
    _images(d / "Set14" / "LR")  # no HR folder and no images of its own: not a benchmark
    (d / "Manga109").mkdir()
    _images(d / "Unknown")
    found = ws.default_benchmarks()
    assert [(b.name, b.hr_dir) for b in found] == [("Set5", d / "set5"),
                                                   ("Urban100", d / "Urban100" / "HR")]
    assert BENCHMARKS == ("Set5", "Set14", "BSD100", "Urban100", "Manga109")
    other = _images(tmp_path / "elsewhere" / "BSD100" / "HR").parent.parent
    monkeypatch.setenv("SPSR_DATASETS", str(other))
    assert [b.name for b in ws.benchmarks()] == ["BSD100"]
    assert [b.name for b in ws.benchmarks(d)] == ["Set5", "Urban100"]  # --datasets wins


def test_run_names_resolve_as_weights_built_in_names_first(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"g: no such weights file or run folder \(built-in "
                       r"names: default, psnr\)"):
        resolve_weights("g")
    _run(tmp_path / "runs" / "g", "model.safetensors")
    _run(tmp_path / "runs" / "psnr", "model.safetensors")
    _run(tmp_path / "runs" / "empty")
    assert resolve_weights("g") == Path("runs", "g", "model.safetensors")
    assert resolve_weights("psnr") == ASSET_DIR / BUILTIN_WEIGHTS["psnr"]
    with pytest.raises(CheckpointError, match=r"empty: run folder has no model.safetensors"):
        resolve_weights("empty")
    with pytest.raises(CheckpointError, match=r"runs in runs/: g, psnr\)"):
        resolve_weights("gg")
    with pytest.raises(CheckpointError, match="no such weights"):
        resolve_weights("sub/g")  # only a bare name names a run
    note = weights_name_note("psnr")
    assert note is not None and "built-in model, not the run runs/psnr" in note
    assert weights_name_note("g") is None and weights_name_note("gg") is None
    assert "--init psnr is the built-in model" in (weights_name_note("psnr", option="--init") or "")
    Path("g").write_bytes(b"x")  # a file of that name here wins over runs/g
    assert resolve_weights("g") == Path("g")
    note = weights_name_note("g")
    assert note is not None and "the file g here, not the run runs/g" in note
