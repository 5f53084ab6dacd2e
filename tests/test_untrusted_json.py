"""Untrusted JSON (votes, keys, plans' logs, configurations, weights metadata) is size- and
depth-limited: a hostile file is refused in one line, never a RecursionError or a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _text import flat
from _votes import key_path, write_votes  # noqa: F401  (the fixture)
from safetensors.torch import save_file
from typer.testing import CliRunner

from spsr.checkpoints.io import inspect_checkpoint
from spsr.errors import CheckpointError, ConfigError
from spsr.toml_io import read_toml
from spsr.untrusted import MAX_DEPTH, UntrustedJsonError, loads, nesting_depth, read_json
from spsr.user_study import collect_votes, load_key
from spsr_cli.cmd_user_study_sheet import app

DEEP = "[" * 100_000 + "]" * 100_000


def test_nesting_depth_ignores_brackets_in_strings() -> None:
    assert nesting_depth('{"a": "[[[[{{", "b": [[1], {"c": "\\"]]"}]}') == 3
    assert nesting_depth("12") == 0
    assert nesting_depth(DEEP) == 100_000


def test_limits_are_checked_before_parsing(tmp_path: Path) -> None:
    assert loads('{"a": [1, {"b": []}]}', "x") == {"a": [1, {"b": []}]}
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH, "x") == loads("[" * MAX_DEPTH + "]" * MAX_DEPTH, "x")
    with pytest.raises(UntrustedJsonError, match=r"^votes: JSON nested 100000 levels deep, more than the 64"):
        loads(DEEP, "votes")
    with pytest.raises(UntrustedJsonError, match="more than the 10 accepted"):
        loads('"' + "x" * 20 + '"', "votes", max_bytes=10)
    big = tmp_path / "big.json"
    big.write_text("[" + "1," * 100 + "1]")
    with pytest.raises(UntrustedJsonError, match="bytes, more than the 50 accepted"):
        read_json(big, "big", max_bytes=50)
    assert isinstance(UntrustedJsonError("x"), ValueError)  # caught like malformed JSON


def test_a_deeply_nested_vote_file_is_skipped_with_its_reason(tmp_path: Path, key_path: Path) -> None:  # noqa: F811
    key = load_key(key_path)
    votes = tmp_path / "votes"
    write_votes(votes / "good.json", key, "ann", {0: [1, 2, 3]})
    (votes / "deep.json").write_text(DEEP)
    collection = collect_votes([votes], key, key_path=key_path)
    assert [f.rater for f in collection.files] == ["ann"]
    (rejected,) = collection.rejected
    assert rejected.path.name == "deep.json" and "nested 100000 levels deep" in rejected.reason

    result = CliRunner().invoke(app, ["tally", str(votes / "deep.json"), "-k", str(key_path), "--no-chart"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "nested 100000 levels deep" in flat(result.output)
    assert "no vote could be counted" in flat(result.output)


def test_a_deeply_nested_key_is_one_line(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text('{"format": ' + DEEP + "}")
    with pytest.raises(ConfigError, match="nested 100001 levels deep"):
        load_key(key)


def test_a_deeply_nested_toml_configuration_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_toml(config)
    config.write_bytes(b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    with pytest.raises(ConfigError, match="bytes; not a configuration file"):
        read_toml(config)


def test_deeply_nested_weights_metadata_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(1)}, str(path),
              metadata={"format": "spsr-weights", "format_version": "1", "arch": DEEP})
    with pytest.raises(CheckpointError, match="nested 100000 levels deep"):
        inspect_checkpoint(path)


def test_ordinary_files_still_parse(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"a": [[{"b": "]]]]"}]]}))
    assert read_json(path, "ok") == {"a": [[{"b": "]]]]"}]]}
