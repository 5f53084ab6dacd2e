"""MkDocs hook: serve the repository's figures and LICENSE beside the pages that show them.

The pages link to these files by their place in the repository (``../spsr/assets/figures/x.png``
from ``docs/index.md``), so the same Markdown reads right on GitHub. MkDocs only knows the files
under ``docs/``; this hook adds the listed repository files to the site under ``repo/`` and points
each link that leaves ``docs/`` for one of them there. A link that leaves ``docs/`` for any other
file is left as it is, so ``mkdocs build --strict`` reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

#: Repository files (globs relative to the repository root) the site serves.
REPO_FILES = ("LICENSE", "spsr/assets/figures/*.png", "experiments/results/*/*.png")
SITE_FOLDER = "repo"

_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def _repo_root(config: Any) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def _served(config: Any) -> set[str]:
    root = _repo_root(config)
    return {
        p.relative_to(root).as_posix()
        for pattern in REPO_FILES
        for p in root.glob(pattern)
        if p.is_file()
    }


def on_files(files: Files, config: Any) -> Files:
    root = _repo_root(config)
    for rel in sorted(_served(config)):
        files.append(
            File.generated(config, f"{SITE_FOLDER}/{rel}", abs_src_path=str(root / rel))
        )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    served = _served(config)
    docs_dir = Path(config["docs_dir"]).resolve().relative_to(_repo_root(config)).as_posix()
    page_dir = posixpath.dirname(f"{docs_dir}/{page.file.src_uri}")

    def repl(match: re.Match[str]) -> str:
        target = match.group(2)
        if "://" in target or target.startswith(("#", "/", "mailto:")):
            return match.group(0)
        path, hash_, anchor = target.partition("#")
        in_repo = posixpath.normpath(posixpath.join(page_dir, path))
        if in_repo not in served:
            return match.group(0)
        new = posixpath.relpath(f"{docs_dir}/{SITE_FOLDER}/{in_repo}", page_dir)
        return f"{match.group(1)}{new}{hash_}{anchor}{match.group(3)}"

    return _LINK.sub(repl, markdown)
