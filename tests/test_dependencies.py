"""Every third-party package that ``spsr`` and ``spsr_cli`` import is declared in
``pyproject.toml``: as a base dependency, or in the extra that the code importing it belongs to
(the test extra installs them all, so an undeclared import would pass the suite and fail on a
user's plain ``pip install``: how ``onnx`` was once missed, tests/engines/test_onnx_dependency.py).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from spsr.toml_io import read_toml

ROOT = Path(__file__).resolve().parents[1]

#: Import names whose distribution is named otherwise.
DISTRIBUTIONS = {"PIL": "pillow", "skimage": "scikit-image", "png": "pypng", "tomli_w": "tomli-w"}

#: Imported only behind an option the user turns on, with a one-line "pip install" where it is
#: missing, and deliberately not an extra (docs/guide/training.md: ``--wandb``).
OPT_IN = {"wandb"}


def _name(requirement: str) -> str:
    name = requirement.split(";")[0]
    for sep in "<>=!~[ ":
        name = name.split(sep)[0]
    return name.strip().lower()


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
    project = read_toml(ROOT / "pyproject.toml")["project"]
    base = {_name(d) for d in project["dependencies"]}
    extras = {_name(d) for deps in project["optional-dependencies"].values() for d in deps}
    imported = _imports()
    assert {"torch", "numpy", "openvino", "onnx"} <= set(imported), "the import scan found too little"
    undeclared = {
        module: sorted(where) for module, where in imported.items()
        if DISTRIBUTIONS.get(module, module).lower() not in base | extras and module not in OPT_IN
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"

