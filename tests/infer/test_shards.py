"""Scale-out: ``--shard K/N`` (or torchrun's / SLURM's variables) splits ``spsr upscale`` and
``spsr eval --weights`` deterministically; ``spsr eval --merge`` gives one process's results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _text import flat
from typer.testing import CliRunner

from spsr.data.image_io import write_image
from spsr.errors import ConfigError
from spsr.infer.shards import Shard, parse_shard, resolve_shard
from spsr_cli.app import app

RUNNER = CliRunner()


def _run(*args: object) -> tuple[int, str]:
    result = RUNNER.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_shards_partition_the_list_whatever_its_order() -> None:
    items = [f"f{i:02d}.png" for i in range(11)]
    shuffled = list(reversed(items))
    parts = [Shard(k, 3).take(shuffled) for k in range(3)]
    assert sorted(x for part in parts for x in part) == items  # every item once
    assert [len(p) for p in parts] == [4, 4, 3]
    assert parts == [Shard(k, 3).take(items) for k in range(3)]  # order of discovery does not matter


def test_parse_and_environment() -> None:
    assert parse_shard("2/4") == Shard(2, 4)
    for bad in ("4/4", "-1/3", "1", "a/b", "1/0"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)
    assert resolve_shard(None, {}) is None
    assert resolve_shard("0/1", {}) is None
    assert resolve_shard("1/3", {"RANK": "0", "WORLD_SIZE": "2"}) == Shard(1, 3)  # the option wins
    assert resolve_shard(None, {"RANK": "1", "WORLD_SIZE": "2"}) == Shard(1, 2, "torchrun RANK/WORLD_SIZE")
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert resolve_shard(None, slurm) == Shard(1, 3, "SLURM array")
    assert resolve_shard(None, {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "1"}) is None
    with pytest.raises(ConfigError, match="RANK=3"):
        resolve_shard(None, {"RANK": "3", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="outside an array"):
        resolve_shard(None, {"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_COUNT": "3"})


def test_upscale_shards_cover_the_inputs_once(tmp_path: Path, tiny_spsr_weights: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    for i in range(5):
        write_image(tmp_path / "in" / f"p{i}.png", rng.integers(0, 256, (8, 9, 3), dtype=np.uint8))
    written: list[set[str]] = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        code, text = _run("upscale", tmp_path / "in", out, "--weights", tiny_spsr_weights, "--shard", f"{k}/2")
        assert code == 0, text
        assert f"shard {k}/2" in text
        written.append({p.name for p in out.iterdir()})
    assert written[0] | written[1] == {f"p{i}.png" for i in range(5)} and not written[0] & written[1]
    # torchrun's variables split the same way; a re-run of a shard skips what it wrote.
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, text = _run("upscale", tmp_path / "in", tmp_path / "out1", "--weights", tiny_spsr_weights)
    assert code == 0 and "0 to do" in text and "torchrun" in text


def _hr(root: Path, count: int) -> Path:
    from skimage import data as skdata

    astro = skdata.astronaut()
    folder = root / "Tiny" / "HR"
    for i in range(count):
        write_image(folder / f"img{i}.png", np.ascontiguousarray(astro[i * 40: i * 40 + 32, 100:140]))
    return folder


def test_eval_shards_merge_into_one_process_results(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    hr = _hr(tmp_path, 5)
    common = ["eval", "--weights", tiny_spsr_weights, "--model", "bicubic", hr, "-q", "--precision", "fp32"]
    code, text = _run(*common, "--json", tmp_path / "whole.json", "--csv", tmp_path / "whole.csv")
    assert code == 0, text
    for k in range(3):
        code, text = _run(*common, "--shard", f"{k}/3", "--json", tmp_path / f"part{k}.json")
        assert code == 0, text
    parts = [tmp_path / f"part{k}.json" for k in (2, 0, 1)]  # any order
    code, table = _run("eval", "--merge", *parts, "--json", tmp_path / "merged.json", "--csv", tmp_path / "merged.csv")
    assert code == 0, table
    whole = json.loads((tmp_path / "whole.json").read_text())
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged == whole
    assert (tmp_path / "merged.csv").read_text() == (tmp_path / "whole.csv").read_text()
    assert "Tiny (x4, 5 images)" in flat(table)
    # A missing shard, a repeated one, results of another run, a shard without --json: one line each.
    code, text = _run("eval", "--merge", parts[0], parts[1])
    assert code != 0 and "missing" in text and "Traceback" not in text
    code, text = _run("eval", "--merge", parts[0], parts[0], parts[1], parts[2])
    assert code != 0 and "also in" in text
    code, text = _run("eval", "--merge", tmp_path / "whole.json")
    assert code != 0 and "not a shard's results" in text
    code, text = _run(*common, "--shard", "0/3")
    assert code != 0 and "--json" in text
