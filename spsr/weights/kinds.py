"""What kind of file a weights path holds, by its first bytes, and PyTorch state dicts read with
one clear line for every way a file can be wrong.

A ``.mat`` given as AlexNet weights, an image, a safetensors file or an empty file each get a message
of their own instead of PyTorch's ``weights_only`` advice (which would tell the user to unpickle a
file they should not be loading at all).
"""

from __future__ import annotations

import os
from pathlib import Path

from spsr.errors import CheckpointError

_DESCRIPTIONS = {
    "torch": "a PyTorch file",
    "pickle": "a PyTorch (legacy pickle) file",
    "mat": "a MATLAB .mat file",
    "hdf5": "an HDF5 file (MATLAB v7.3 .mat or .h5)",
    "safetensors": "a safetensors file",
    "image": "an image",
    "text": "a text file (an HTML error page or a Git LFS pointer?)",
    "empty": "an empty file",
    "unknown": "a file of unknown format",
}


def sniff(path: str | os.PathLike[str]) -> str:
    """``torch`` (zip archive) | ``pickle`` | ``mat`` | ``hdf5`` | ``safetensors`` | ``image`` |
    ``text`` | ``empty`` | ``unknown``, from the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "torch"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head.startswith(b"MATLAB"):
        return "mat"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")):
        return "image"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30:
        return "safetensors"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown"
    return "text" if text.isprintable() or "\n" in text else "unknown"


def describe(kind: str) -> str:
    """``a MATLAB .mat file`` ..."""
    return _DESCRIPTIONS.get(kind, _DESCRIPTIONS["unknown"])


def expect_kind(path: Path, kinds: tuple[str, ...], what: str, hint: str = "") -> str:
    """The file's kind, which must be one of ``kinds``.

    Raises:
        CheckpointError: ``<path> is a MATLAB .mat file, not <what>[; hint]``.
    """
    kind = sniff(path)
    if kind not in kinds:
        raise CheckpointError(f"{path} is {describe(kind)}, not {what}" + (f"; {hint}" if hint else ""))
    return kind


def load_torch_state(path: Path, what: str, hint: str = "") -> dict:
    """A state dict from a ``.pth`` file, read with ``weights_only=True``.

    Args:
        path: the file.
        what: what it should be, for messages (``torchvision's AlexNet weights``).
        hint: appended to messages (e.g. which file the option takes).

    Raises:
        CheckpointError: not a PyTorch file, truncated, holding pickled code, or not a dict.
    """
    import torch

    expect_kind(path, ("torch", "pickle"), what, hint)
    tail = f"; {hint}" if hint else ""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's file
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text or "pickle" in text.lower():
            raise CheckpointError(
                f"{path} holds pickled Python objects besides tensors, so it is not {what}{tail}"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise CheckpointError(f"cannot read {path} ({first}): truncated or corrupt?{tail}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not {what}{tail}")
    return state
