"""The import layers of pyproject.toml's ``[tool.importlinter]`` (docs/architecture.md): every
package of spsr is placed in one, and the contract holds (``lint-imports`` in .ci/run checks it too;
this test runs it where the test extra is installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spsr.toml_io import read_toml

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict]:
    config = read_toml(ROOT / "pyproject.toml")
    return config["tool"]["importlinter"]["contracts"]


def _layered() -> list[str]:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    return [name.strip() for layer in layers for name in layer.replace(":", "|").split("|")]


def test_every_package_and_top_level_module_of_spsr_has_a_layer() -> None:
    spsr = ROOT / "spsr"
    parts = {p.name for p in spsr.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    parts |= {p.stem for p in spsr.glob("*.py") if p.stem != "__init__"}
    layered = _layered()
    assert len(layered) == len(set(layered)), "a package is in two layers"
    missing = sorted(f"spsr.{p}" for p in parts if f"spsr.{p}" not in layered)
    assert not missing, f"add these to a layer in pyproject.toml: {missing}"
    assert layered[0] == "spsr_cli" and layered[-1] == "spsr.errors"


def test_the_layers_put_checkpoints_below_inference_and_training_and_weights_below_metrics() -> None:
    layered = _layered()
    order = {name: i for i, name in enumerate(layered)}  # top first
    assert order["spsr.train"] < order["spsr.infer"] < order["spsr.checkpoints"]
    assert order["spsr.metrics"] < order["spsr.losses"] < order["spsr.weights"]
    assert {c["type"] for c in _contracts()} == {"layers", "acyclic_siblings", "forbidden"}
    forbidden = next(c for c in _contracts() if c["type"] == "forbidden")
    assert forbidden["source_modules"] == ["spsr.lite"] and "torch" in forbidden["forbidden_modules"]


def test_the_import_contract_holds() -> None:
    pytest.importorskip("importlinter", reason="import-linter is in the test extra")
    env_path = str(ROOT)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[2], no_cache=True))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, env_path, str(ROOT / "pyproject.toml")],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "3 kept, 0 broken" in run.stdout


def _drawn_layers(text: str, after: str) -> list[str]:
    """The first fenced block after ``after``: one layer a line, its first column (the names)."""
    block = text[text.index(after):].split("```", 2)[1]
    rows = [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("─")]
    names = []
    for row in rows:
        words = row.split("  ")[0] if "  " in row else row  # drop the description column
        names.append(" | ".join(w.strip() for w in words.split("|")))
    return names


def test_the_layer_drawings_of_the_guides_are_the_contract() -> None:
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    short = [" | ".join(n.strip().removeprefix("spsr.") for n in layer.split("|")) for layer in layers]
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert _drawn_layers(contributing, "## The layers") == short
    assert _drawn_layers(architecture, "# Architecture") == short


@pytest.mark.parametrize(
    "package",
    ["spsr", "spsr.ablation", "spsr.archs", "spsr.checkpoints", "spsr.data", "spsr.infer",
     "spsr.losses", "spsr.metrics", "spsr.nse", "spsr.train", "spsr.user_study", "spsr.weights"],
)
def test_every_public_name_of_a_package_resolves(package: str) -> None:
    """The packages load their names lazily (PEP 562) from a name → module table: after a module
    is renamed, a stale entry only fails when that name is first used, so every one is used here."""
    import importlib

    module = importlib.import_module(package)
    missing = [name for name in getattr(module, "__all__", []) if getattr(module, name, None) is None]
    assert not missing, f"{package}: {missing}"
