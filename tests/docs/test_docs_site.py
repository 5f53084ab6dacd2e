"""The docs site (mkdocs.yml + docs/) and the short README that points into it.

The nav lists every page and only pages that exist; README's links reach existing pages and
headings; the README stays short; and, where MkDocs is installed (the test extra has it), the
site builds with ``--strict`` (no broken link or anchor, no page outside the nav, every API object
imports) and serves the repository figures its pages show.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spsr_cli import docgen

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"
README_LIMIT = 15 * 1024


def _nav_pages(items: Any) -> list[str]:
    pages: list[str] = []
    for item in items:
        if isinstance(item, str):
            pages.append(item)
        elif isinstance(item, dict):
            for value in item.values():
                pages += [value] if isinstance(value, str) else _nav_pages(value)
    return pages


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")  # PyYAML comes with MkDocs (the docs and test extras)
    return yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))


def _doc_pages() -> set[str]:
    return {
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if not p.relative_to(DOCS).as_posix().startswith("hooks/")
    }


def test_nav_lists_every_page_once_and_nothing_else(config: dict[str, Any]) -> None:
    nav = _nav_pages(config["nav"])
    assert len(nav) == len(set(nav)), [page for page in nav if nav.count(page) > 1]
    assert set(nav) == _doc_pages(), (
        f"not in mkdocs.yml's nav: {sorted(_doc_pages() - set(nav))}; "
        f"in the nav but missing: {sorted(set(nav) - _doc_pages())}"
    )
    generated = {
        rel.removeprefix("docs/") for rel in docgen.generate() if rel.startswith("docs/")
    }
    assert generated and generated <= set(nav)


def test_readme_is_short() -> None:
    size = README.stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; the manual belongs in docs/"


def _slug(heading: str) -> str:
    """The anchor MkDocs (toc's default slugify) and GitHub give a heading."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(markdown: str) -> set[str]:
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def test_slug_matches_the_site_anchors() -> None:
    assert _slug("Running on a cluster (SLURM, torchrun, pre-emption)") == (
        "running-on-a-cluster-slurm-torchrun-pre-emption"
    )
    assert _slug("Patch store (`.h5`)") == "patch-store-h5"
    assert _slug("spsr user-study-sheet") == "spsr-user-study-sheet"


def test_readme_links_reach_existing_pages_and_headings() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        path, _, anchor = link.partition("#")
        assert path, f"README.md links to #{anchor}: README sections moved to docs/, link the page"
        target = REPO / path
        assert target.is_file(), f"README.md links to {link}, which does not exist"
        if anchor:
            assert anchor in _anchors(target.read_text(encoding="utf-8")), (
                f"README.md links to {link}, but {path} has no heading with that anchor"
            )


def test_site_builds_strict_and_serves_the_figures(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "WARNING" not in result.stderr, result.stderr[-4000:]
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="repo/spsr/assets/figures/gradmap_panel.png"' in index
    assert (site / "repo" / "spsr" / "assets" / "figures" / "gradmap_panel.png").is_file()
    assert (site / "repo" / "LICENSE").is_file()
    api = (site / "reference" / "api" / "infer" / "index.html").read_text(encoding="utf-8")
    assert "load_model" in api and "TiledUpscaler" in api
    cli = (site / "reference" / "cli" / "spsr-upscale" / "index.html").read_text(encoding="utf-8")
    assert "--tile-overlap" in cli


def _api_identifiers() -> list[str]:
    found = []
    for page in sorted((DOCS / "reference" / "api").glob("*.md")):
        found += re.findall(r"^::: ([\w.]+)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return found


def _documented(obj: Any) -> bool:
    """A docstring of its own: not empty, not the signature a dataclass gets without one."""
    import inspect

    doc = inspect.getdoc(obj) or ""
    return bool(doc.strip()) and not doc.startswith(f"{getattr(obj, '__name__', '')}(")


def test_api_pages_show_only_importable_documented_objects() -> None:
    """Every ``::: name`` on the API pages imports and has a docstring; so do the public names
    (``__all__``) of a whole module shown."""
    import importlib
    import inspect

    identifiers = _api_identifiers()
    assert {"spsr.infer", "spsr.metrics", "spsr.user_study.sheet.build_study"} <= set(identifiers)
    for identifier in identifiers:
        module_name, obj = identifier, None
        while True:
            try:
                module = importlib.import_module(module_name)
                break
            except ModuleNotFoundError:
                module_name, _, _ = module_name.rpartition(".")
                assert module_name, f"{identifier} does not import"
        obj = module
        for part in identifier[len(module_name) + 1 :].split(".") if identifier != module_name else []:
            obj = getattr(obj, part)
        assert _documented(obj), f"{identifier} has no docstring"
        if obj is module:
            for name in getattr(module, "__all__", []):
                member = getattr(module, name)
                if callable(member) or inspect.isclass(member):
                    assert _documented(member), f"{identifier}.{name} has no docstring"
