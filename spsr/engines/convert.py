"""PyTorch → ONNX → OpenVINO IR: the conversions the engines run and ``spsr export`` writes.

The exported graph is the network's plain forward (the official op sequence, without spsr's CPU
fast kernels), in fp32, with the input ``lr`` ``(N, 3, H, W)`` in [0, 1] and the outputs ``sr``
``(N, 3, sH, sW)`` and, where asked for, ``grad`` (an SPSR model's gradient branch).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spsr.archs import SROutput
from spsr.errors import ConfigError

#: The ONNX opset written (ONNX Runtime ≥ 1.13 and OpenVINO ≥ 2022.3 read it).
OPSET = 17
INPUT_NAME = "lr"
#: The input's height and width in the trace of a dynamic-size export: small (the trace runs the
#: network once), and a multiple of 4 as the 32 before it, so Python branches on the size (the
#: pixel-unshuffle padding) are traced the same way.
TRACE_SIZE = 8


class ExportWrapper(nn.Module):
    """The generator with a tensor output: ``sr``, or ``(sr, grad)`` with ``with_gradient``."""

    def __init__(self, model: nn.Module, with_gradient: bool) -> None:
        super().__init__()
        self.model = model
        self.with_gradient = with_gradient

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        raw = self.model(x)
        if not self.with_gradient:
            return raw.sr if isinstance(raw, SROutput) else raw
        if not isinstance(raw, SROutput):
            raise ConfigError("this model has no gradient branch (an SPSR model has one)")
        return raw.sr, raw.grad


def output_names(with_gradient: bool) -> list[str]:
    return ["sr", "grad"] if with_gradient else ["sr"]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch on one thread inside the block (restored after).

    The exporter runs the network once on a tiny input: OpenMP's second thread has nothing to
    share there, and on a busy 2-core machine waiting for it cost 2× (full SPSR-G: 9–11 s on one
    thread against 21–23 s on two, at load ≈ 8; ``docs/guide/engines.md``).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_gradient_output(model: nn.Module, with_gradient: bool) -> None:
    """Refuse a gradient output for a model without a gradient branch, before any export.

    Raises:
        ConfigError: the model's output has no gradient branch.
    """
    if not with_gradient:
        return
    from spsr.engines.torch_fast import plain_forward

    probe = torch.zeros(1, 3, TRACE_SIZE, TRACE_SIZE)
    with torch.inference_mode(), plain_forward(), one_thread():
        raw = model(probe.to(next(model.parameters()).device))
    if not isinstance(raw, SROutput):
        raise ConfigError("this model has no gradient branch (an SPSR model has one)")


def onnx_missing() -> str | None:
    """Why :func:`export_onnx` cannot run here (PyTorch's exporter needs the ``onnx`` package, for
    every conversion and every ``spsr export``), or None."""
    if importlib.util.find_spec("onnx") is None:
        return "the onnx package is missing, and spsr converts models through ONNX (pip install onnx)"
    return None


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    with_gradient: bool = False,
    fixed_size: tuple[int, int] | None = None,
    batch: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``model`` as an ONNX file (fp32, opset :data:`OPSET`).

    Args:
        model: the generator (any device; exported from a CPU fp32 copy of its weights).
        path: the ``.onnx`` file to write (not atomically: callers write to a temporary name).
        with_gradient: a second output ``grad``, the gradient branch (SPSR models).
        fixed_size: ``(height, width)`` of the input for a static graph; None: height and width
            are dynamic (traced on a :data:`TRACE_SIZE`² input: the same graph, and the trace,
            one forward of the network, costs far less than at 32²).
        batch: a fixed batch size; None: dynamic.
        metadata: key/value strings stored in the file's ``metadata_props``.

    Raises:
        ConfigError: ``with_gradient`` for a model without a gradient branch.
        RuntimeError: the exporter failed (an operator it cannot write...).
    """
    from spsr.engines.torch_fast import plain_forward

    model = model.float().cpu().eval()
    h, w = fixed_size or (TRACE_SIZE, TRACE_SIZE)
    example = torch.rand(batch or 1, 3, h, w)
    dynamic: dict[str, dict[int, str]] = {}
    axes: dict[int, str] = {}
    if batch is None:
        axes[0] = "batch"
    if fixed_size is None:
        axes.update({2: "height", 3: "width"})
    names = output_names(with_gradient)
    if axes:
        dynamic[INPUT_NAME] = axes
        out_axes = {k: ("s" + v if k > 0 else v) for k, v in axes.items()}
        dynamic.update({n: dict(out_axes) for n in names})
    wrapper = ExportWrapper(model, with_gradient).eval()  # raises the ConfigError in the trace
    with torch.no_grad(), plain_forward(), one_thread(), warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=names, dynamic_axes=dynamic or None)
    if metadata:
        set_onnx_metadata(path, metadata)
    return Path(path)


def with_onnx_metadata(data: bytes, metadata: Mapping[str, str]) -> bytes:
    """A serialized ONNX model with ``metadata`` added to its ``metadata_props``.

    Protocol buffers merge concatenated messages (a repeated field's entries are appended), so a
    ``ModelProto`` holding only the new entries, serialized after ``data``, adds them without
    parsing and re-serializing the whole model (100 MB for the full SPSR-G).
    """
    import onnx

    extra = onnx.ModelProto()
    for key, value in metadata.items():
        entry = extra.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return data + extra.SerializeToString()


def set_onnx_metadata(path: str | os.PathLike[str], metadata: Mapping[str, str]) -> None:
    """Store key/value strings in an ONNX file's ``metadata_props``: appended to the file, which is
    neither parsed nor rewritten (:func:`with_onnx_metadata`)."""
    with open(path, "ab") as fh:
        fh.write(with_onnx_metadata(b"", metadata))


def onnx_to_openvino_model(onnx: bytes | str | os.PathLike[str]) -> Any:
    """An ONNX model (serialized, or a file) as an ``openvino.Model``, as ``ov.convert_model`` makes it.

    ``ov.convert_model`` is ``read_model`` plus its MOC transformations, and an empty
    pre-processing pass that validated the whole graph again: 2.6 of its 5 s on the full SPSR-G.
    The IR written from this one is the same (weights byte for byte, the same layers; only
    generated names and the ``conversion_parameters`` note differ). Where OpenVINO's module of
    offline transformations is missing, ``ov.convert_model`` runs.
    """
    import openvino as ov

    try:
        from openvino._offline_transformations import apply_moc_transformations
    except ImportError:  # pragma: no cover - another OpenVINO release
        source = io.BytesIO(onnx) if isinstance(onnx, bytes) else str(onnx)
        return ov.convert_model(source)
    model = ov.Core().read_model(onnx if isinstance(onnx, bytes) else str(onnx))
    apply_moc_transformations(model, cf=False, smart_reshape=True)
    return model


def onnx_to_openvino(onnx: bytes | str | os.PathLike[str], xml_path: str | os.PathLike[str],
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Convert an ONNX model (serialized, or a file) to OpenVINO IR (``.xml`` + ``.bin`` beside it),
    weights kept fp32.

    The metadata goes into the IR's ``rt_info`` under ``spsr``.
    """
    import openvino as ov

    model = onnx_to_openvino_model(onnx)
    for key, value in (metadata or {}).items():
        model.set_rt_info(str(value), ["spsr", key])
    ov.save_model(model, str(xml_path), compress_to_fp16=False)  # fp16 weights would cost levels
    return Path(xml_path)


def read_openvino_metadata(xml_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``spsr`` metadata of an IR written by :func:`onnx_to_openvino`."""
    import openvino as ov

    model = ov.Core().read_model(str(xml_path))
    if not model.has_rt_info(["spsr"]):
        return {}
    keys = model.get_rt_info(["spsr"]).value
    return {str(k): model.get_rt_info(["spsr", str(k)]).astype(str) for k in keys}
