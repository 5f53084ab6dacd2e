"""The TOML reader: one parser for every file, and Python 3.10's ``tomli`` when ``tomllib`` is
missing (the standard library has it from 3.11; pyproject promises 3.10)."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import tomllib

import spsr.train.config as config_module
from spsr.errors import ConfigError
from spsr.toml_io import read_toml
from spsr.train.config import TrainConfig, dump_toml, load_toml
from spsr.train.variants import preset

ROOT = Path(__file__).resolve().parent.parent


def _fresh_reader(monkeypatch: pytest.MonkeyPatch) -> tuple[types.ModuleType, list[str]]:
    """spsr/toml_io.py imported as on Python 3.10: no ``tomllib``, a ``tomli`` that records use."""
    calls: list[str] = []
    tomli = types.ModuleType("tomli")

    def load(fh):  # tomli's API is tomllib's
        calls.append("load")
        return tomllib.load(fh)

    tomli.load = load  # type: ignore[attr-defined]
    tomli.loads = tomllib.loads  # type: ignore[attr-defined]
    tomli.TOMLDecodeError = tomllib.TOMLDecodeError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` now fails
    monkeypatch.setitem(sys.modules, "tomli", tomli)
    spec = importlib.util.spec_from_file_location("_toml_io_py310", ROOT / "spsr" / "toml_io.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, calls


def test_config_reader_uses_tomli_without_tomllib(tmp_path, monkeypatch) -> None:
    cfg = preset("g")
    cfg.run.iterations = 1234
    path = tmp_path / "config.toml"
    path.write_text(dump_toml(cfg), encoding="utf-8")
    reader, calls = _fresh_reader(monkeypatch)
    assert reader.tomllib is sys.modules["tomli"]
    monkeypatch.setattr(config_module, "read_toml", reader.read_toml)
    again = TrainConfig.from_dict(load_toml(path))
    assert calls == ["load"]
    assert again.to_dict() == cfg.to_dict()
    (tmp_path / "bad.toml").write_text("[model\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(tmp_path / "bad.toml")


def test_reader_errors_are_one_line_naming_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"configuration file not found: .*nope\.toml"):
        read_toml(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"ablation spec .* is a folder"):
        read_toml(tmp_path, "ablation spec")
    (tmp_path / "latin1.toml").write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text: byte 11"):
        read_toml(tmp_path / "latin1.toml")
    (tmp_path / "ok.toml").write_text('[run]\niterations = 5\n', encoding="utf-8")
    assert read_toml(tmp_path / "ok.toml") == {"run": {"iterations": 5}}


def test_only_the_reader_imports_a_toml_parser() -> None:
    """Any other ``import tomllib`` would break Python 3.10 again."""
    offenders = []
    for path in [*(ROOT / "spsr").rglob("*.py"), *(ROOT / "spsr_cli").rglob("*.py")]:
        if path == ROOT / "spsr" / "toml_io.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if {"tomllib", "tomli"} & set(names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
