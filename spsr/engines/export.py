"""``spsr export``: a loaded model as an ONNX file or OpenVINO IR, with its architecture and
provenance in the file's metadata, written whole or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import spsr
from spsr.atomic import file_mode
from spsr.engines.convert import (
    OPSET,
    check_gradient_output,
    export_onnx,
    onnx_missing,
    onnx_to_openvino,
)
from spsr.errors import ConfigError, SpsrError

#: What ``spsr export -o`` writes, by the output's suffix.
FORMATS = {".onnx": "ONNX", ".xml": "OpenVINO IR"}


class ExportError(SpsrError):
    """The model could not be exported (the exporter's reason in one line)."""


def export_format(path: str | os.PathLike[str]) -> str:
    """``.onnx`` or ``.xml`` for an output path.

    Raises:
        ConfigError: any other suffix.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"{path}: unknown export format {suffix or '(no suffix)'!r}; "
                          "use .onnx (ONNX) or .xml (OpenVINO IR, with a .bin beside it)")
    return suffix


def export_metadata(loaded: Any, with_gradient: bool, fixed_size: tuple[int, int] | None) -> dict[str, str]:
    """The metadata an exported file carries: architecture, scale, outputs, source, provenance."""
    meta = {
        "spsr_version": spsr.__version__,
        "arch": loaded.spec.to_json(),
        "scale": str(loaded.spec.scale),
        "outputs": "sr,grad" if with_gradient else "sr",
        "input": "lr: N×3×H×W float32 RGB in [0, 1]" + (f", H×W = {fixed_size[0]}×{fixed_size[1]}"
                                                       if fixed_size else ", any H×W"),
        "source": loaded.source.name if loaded.source is not None else "",
        "layout": loaded.layout,
        "opset": str(OPSET),
    }
    if loaded.metadata:
        meta["provenance"] = json.dumps(loaded.metadata, sort_keys=True, default=str)
    return meta


def export_model(
    loaded: Any,
    path: str | os.PathLike[str],
    with_gradient: bool = False,
    fixed_size: tuple[int, int] | None = None,
    batch: int | None = None,
) -> list[Path]:
    """Write ``loaded`` (a :class:`spsr.infer.LoadedModel`) to ``path`` (``.onnx`` or ``.xml``).

    The files appear only once complete (written in a temporary folder beside ``path``, then
    renamed; for IR the ``.bin`` first, then the ``.xml`` that names it).

    Returns:
        The files written.

    Raises:
        ConfigError: an unknown format, or a gradient output of a model without a gradient branch.
        ExportError: the exporter failed.
        OSError: the output folder cannot be written.
    """
    target = Path(path)
    suffix = export_format(target)
    check_gradient_output(loaded.model, with_gradient)
    if not target.parent.is_dir():
        raise ConfigError(f"{target.parent}: the output folder does not exist")
    if not os.access(target.parent, os.W_OK):
        raise ConfigError(f"{target.parent}: the output folder is not writable")
    if onnx_missing() is not None:  # PyTorch's exporter needs it, for IR too
        raise ExportError(f"exporting {FORMATS[suffix]} needs the onnx package (pip install onnx)")
    meta = export_metadata(loaded, with_gradient, fixed_size)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        try:
            onnx_path = export_onnx(loaded.model, tmp / "model.onnx", with_gradient, fixed_size, batch, meta)
            if suffix == ".xml":
                onnx_to_openvino(onnx_path, tmp / target.name, meta)  # names the .bin after it
        except ImportError as exc:
            raise ExportError(f"exporting {FORMATS[suffix]} needs the {exc.name or 'missing'} package") from None
        except (RuntimeError, ValueError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ExportError(f"the model cannot be exported as {FORMATS[suffix]}: {first}") from None
        written = []
        if suffix == ".xml":
            bin_name = target.with_suffix(".bin").name
            moves = [(tmp / bin_name, target.with_suffix(".bin")), (tmp / target.name, target)]
        else:
            moves = [(onnx_path, target)]
        for src, dst in moves:
            os.chmod(src, file_mode())
            os.replace(src, dst)
            written.append(dst)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
