"""Every third-party package that ``spsr`` and ``spsr_cli`` import is declared in
``pyproject.toml``: as a base dependency, or in the extra that the code importing it belongs to
(the test extra installs them all, so an undeclared import would pass the suite and fail on a
user's plain ``pip install``: how ``onnx`` was once missed, tests/engines/test_onnx_dependency.py).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from packaging.requirements import Requirement

from spsr.toml_io import read_toml

ROOT = Path(__file__).resolve().parents[1]

#: Import names whose distribution is named otherwise.
DISTRIBUTIONS = {"PIL": "pillow", "skimage": "scikit-image", "png": "pypng", "tomli_w": "tomli-w"}

#: Imported only behind an option the user turns on, with a one-line "pip install" where it is
#: missing, and deliberately not an extra (docs/guide/training.md: ``--wandb``).
OPT_IN = {"wandb"}


def requirements(section: str = "dependencies") -> list[Requirement]:
    """``[project] dependencies`` of pyproject.toml, or every extra's with ``optional-dependencies``."""
    project = read_toml(ROOT / "pyproject.toml")["project"]
    found = project[section]
    texts = found if isinstance(found, list) else [d for deps in found.values() for d in deps]
    return [Requirement(t) for t in texts]


def _imports() -> dict[str, set[str]]:
    """Top-level third-party module names imported anywhere in the packages, and where."""
    found: dict[str, set[str]] = {}
    for package in ("spsr", "spsr_cli"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ("spsr", "spsr_cli", "__future__"):
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared() -> None:
    base = {r.name.lower() for r in requirements()}
    extras = {r.name.lower() for r in requirements("optional-dependencies")}
    imported = _imports()
    assert {"torch", "numpy", "openvino", "onnx"} <= set(imported), "the import scan found too little"
    undeclared = {
        module: sorted(where) for module, where in imported.items()
        if DISTRIBUTIONS.get(module, module).lower() not in base | extras and module not in OPT_IN
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"



def test_onnx_is_a_base_dependency_on_every_platform() -> None:
    """Every conversion and ``spsr export`` run PyTorch's ONNX exporter, which imports ``onnx``:
    in an extra only, a plain install could not convert and ``auto`` ran PyTorch on native-bf16
    CPUs (tests/engines/test_onnx_dependency.py for the one line a missing package gives)."""
    base = requirements()
    onnx = [r for r in base if r.name.lower() == "onnx"]
    assert onnx, "onnx must be a base dependency"
    assert all(r.marker is None for r in onnx), f"onnx must not carry an environment marker: {onnx}"
    assert any(r.name.lower() == "openvino" for r in base)
