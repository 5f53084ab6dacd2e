"""Make committed result files free of this machine's absolute paths.

``python experiments/portable.py FILE...`` rewrites, in place, every absolute path in the given
text files (JSON, Markdown, CSV): a path inside the repository becomes relative to its root
(``experiments/runs/...``, also for another checkout's ``…/experiments/…``), a path into a
``datasets`` folder becomes ``datasets/...`` (where a
reader keeps their copy), anything else is left alone. The experiment scripts run it on what
they copy into ``experiments/results/``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PATH = re.compile(r"(?<![\w.])/(?:[\w.+@-]+/)*[\w.+@-]+")


def portable(path: str, root: Path = ROOT) -> str:
    """The repo-relative or ``datasets/``-relative form of an absolute ``path``."""
    root_text = str(root).rstrip("/") + "/"
    if path.startswith(root_text):
        return path[len(root_text):]
    parts = path.split("/")
    for anchor in ("experiments", "datasets"):  # another checkout's runs; a datasets folder
        if anchor in parts:
            return "/".join(parts[parts.index(anchor):])
    return path


def rewrite(text: str, root: Path = ROOT) -> str:
    """``text`` with every absolute path replaced by :func:`portable`."""
    return _PATH.sub(lambda m: portable(m.group(0), root), text)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python experiments/portable.py FILE...", file=sys.stderr)
        return 2
    for name in argv:
        file = Path(name)
        text = file.read_text(encoding="utf-8")
        new = rewrite(text)
        if new != text:
            tmp = file.with_name(file.name + ".tmp")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(file)
            print(f"rewritten: {file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
