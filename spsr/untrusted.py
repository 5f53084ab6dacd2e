"""JSON from files a user may have been handed (votes, keys, plans, configurations, the metadata of
weights files), parsed within limits of size and nesting.

``json.loads`` recurses once per nesting level: a vote file of ``[[[[...]]]]`` a hundred thousand
levels deep ends in a ``RecursionError`` (or, in some builds, a crash), and a file of gigabytes is
read whole before anything is checked. Every such file is small and shallow when it is genuine, so
one that is not is refused in one line before parsing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from spsr.errors import SpsrError

#: Nesting of arrays/objects allowed; spsr's own files use at most 6.
MAX_DEPTH = 64
#: Size of a JSON text allowed by default (an answer key of thousands of images is ~1 MB).
MAX_BYTES = 64 * 1024 * 1024

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")


class UntrustedJsonError(SpsrError, ValueError):
    """JSON text too large or too deeply nested to be parsed (a ``ValueError``, like malformed JSON)."""


def nesting_depth(text: str | bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (brackets inside strings ignored),
    found without recursion, in linear time."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    brackets = _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", data))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def loads(
    text: str | bytes, what: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """``json.loads`` of ``text`` after checking its size and nesting.

    Args:
        text: the JSON text.
        what: what it is, for the message ("vote file x.json", "metadata 'arch' of w.safetensors").

    Raises:
        UntrustedJsonError: larger than ``max_bytes`` or nested deeper than ``max_depth``.
        json.JSONDecodeError: not JSON.
    """
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > max_bytes:
        raise UntrustedJsonError(
            f"{what}: {size:,} bytes of JSON, more than the {max_bytes:,} accepted"
        )
    depth = nesting_depth(text)
    if depth > max_depth:
        raise UntrustedJsonError(
            f"{what}: JSON nested {depth} levels deep, more than the {max_depth} accepted"
        )
    return json.loads(text)


def read_json(
    path: str | os.PathLike[str], what: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Any:
    """Read and parse a JSON file within limits; its size is checked before it is read.

    Raises:
        UntrustedJsonError: too large or too deeply nested.
        OSError, UnicodeDecodeError, json.JSONDecodeError: unreadable, not UTF-8, not JSON.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise UntrustedJsonError(f"{what}: {size:,} bytes, more than the {max_bytes:,} accepted")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    return loads(data.decode("utf-8"), what, max_bytes=max_bytes, max_depth=max_depth)
