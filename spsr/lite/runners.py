"""OpenVINO and ONNX Runtime running a converted model on NumPy batches, without PyTorch.

:class:`OpenVinoModel` compiles each input shape once as a static-shape model in bf16 (on a CPU
with AMX static shapes ran 1.3× faster than one dynamic-shape compilation). In f32 it compiles
the first input shape statically too — a process that runs one shape (one image, untiled or of a
single tile shape) got its result 2.4 s sooner on the full SPSR-G (median of five pairs) than
through a dynamic compilation, whose first call at a shape is slow — and from a second shape on it runs one
dynamic-shape compilation, dropping the static one: every compiled shape keeps its own buffers
(a 1024² image through 128² tiles peaked at 4.6 GB of memory with static shapes against 1.9 GB
with one dynamic compilation, ``docs/guide/engines.md``). OpenVINO's compiled-model cache
(``CACHE_DIR``) lets a later process load the compiled blob instead of compiling again.
:class:`OnnxRuntimeModel` runs the CPU execution provider in fp32. Both take ``(N, 3, h, w)``
float32 and return the network's outputs concatenated on the channels (the SR image, then the
gradient branch's output where the file has it).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

#: Compiled shapes kept per OpenVINO model (an image has at most nine tile shapes per batch size).
MAX_SHAPES = 32
#: OpenVINO's ``INFERENCE_PRECISION_HINT`` for spsr's precision names.
OPENVINO_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


class EmptyOutput(RuntimeError):
    """The engine returned an empty output (seen with OpenVINO bf16 under ``ONEDNN_MAX_CPU_ISA=AVX2``)."""


def first_line(exc: BaseException) -> str:
    """``Type: the message's first line`` (at most 200 characters) of an engine's exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _joined(outs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(outs, axis=1) if len(outs) > 1 else outs[0]


class OpenVinoModel:
    """An OpenVINO IR (``model.xml`` + ``.bin``) compiled for the CPU, one compilation per shape.

    Args:
        xml: the IR's ``.xml`` file.
        precision: ``fp32`` or ``bf16`` (OpenVINO's inference precision hint).
        threads: inference threads.
        cache_dir: OpenVINO's compiled-model cache (None: each process compiles).

    Attributes:
        dynamic: whether the dynamic-shape compilation now runs every shape (f32, from the second
            input shape on).
        compile_seconds: seconds spent compiling (or loading from ``cache_dir``) per input shape
            (``()`` for the dynamic compilation).
    """

    def __init__(self, xml: Path, precision: str, threads: int, cache_dir: Path | None = None) -> None:
        import openvino as ov

        self.core = ov.Core()
        if cache_dir is not None:
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                self.core.set_property({"CACHE_DIR": str(cache_dir)})
            except OSError:
                pass  # no compiled-model cache: each process compiles
        self.model = self.core.read_model(str(xml))
        self.precision = precision
        self.config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": OPENVINO_HINTS[precision],
                                       "INFERENCE_NUM_THREADS": threads}
        self.dynamic = False
        self.compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.compile_seconds: dict[tuple[int, ...], float] = {}

    @property
    def compilations(self) -> int:
        """Shapes compiled (or loaded from the cache) so far."""
        return len(self.compile_seconds)

    def _request(self, shape: tuple[int, ...]) -> Any:
        if self.dynamic:
            shape = ()
        request = self.compiled.get(shape)
        if request is not None:
            self.compiled.move_to_end(shape)
            return request
        if self.precision == "fp32" and self.compiled:  # a second shape: one dynamic compilation
            self.compiled.clear()  # the static one's buffers go first
            self.dynamic, shape = True, ()
        start = time.perf_counter()
        model = self.model
        if shape:
            model = self.model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
        request = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        self.compile_seconds[shape] = self.compile_seconds.get(shape, 0.0) + time.perf_counter() - start
        self.compiled[shape] = request
        if len(self.compiled) > MAX_SHAPES:
            self.compiled.popitem(last=False)
        return request

    def __call__(self, x: np.ndarray) -> np.ndarray:
        arr = np.ascontiguousarray(x, dtype=np.float32)
        request = self._request(tuple(arr.shape))
        request.infer({0: arr})
        outs = [np.array(request.get_output_tensor(i).data) for i in range(len(request.model_outputs))]
        if any(o.size == 0 for o in outs):
            raise EmptyOutput(f"openvino returned an empty output in {self.precision}")
        return _joined(outs)


#: A compilation note is given from this many seconds of compiling in one run on.
COMPILE_NOTE_S = 1.0


def compile_note(model: object, cache_dir: Path | None) -> str | None:
    """One line on what OpenVINO's compilation of tile shapes cost this run, where it took at least
    :data:`COMPILE_NOTE_S` seconds (a first run; later runs load the compiled shapes from
    ``cache_dir``); None for other engines or a quick compilation."""
    if not isinstance(model, OpenVinoModel) or not model.compile_seconds:
        return None
    total = sum(model.compile_seconds.values())
    if total < COMPILE_NOTE_S:
        return None
    shapes = ", ".join("×".join(str(d) for d in shape) or "dynamic" for shape in model.compile_seconds)
    where = f"; kept in {cache_dir}, later runs load them" if cache_dir is not None else ""
    return f"openvino compiled {len(model.compile_seconds)} tile shape(s) ({shapes}) in {total:.1f} s{where}"


def optimized_name(path: Path, engine_version: str) -> str:
    """The file name of ONNX Runtime's optimized graph of ``path`` on this machine: a digest of the
    source file's path, size and modification time, ONNX Runtime's version and the CPU (the graph
    ONNX Runtime optimizes with every optimization holds kernels chosen for this CPU's ISA)."""
    from spsr import cpu

    st = path.stat()
    key = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, engine_version, cpu.cpu_model_name(),
                      list(cpu.kernel_flags()), cpu.kernel_env()])
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".onnx"


class OnnxRuntimeModel:
    """An ONNX file run by ONNX Runtime's CPU execution provider (fp32).

    Args:
        path: the ONNX file.
        threads: intra-op threads.
        optimized_dir: where ONNX Runtime's optimized graph of ``path`` is kept (None: each
            process optimizes). The first session saves its optimized graph there (atomically: a
            temporary file renamed into place); later processes load that instead of optimizing
            again (the full SPSR-G: 0.3–0.4 s instead of 0.7–2.0 s,
            ``docs/guide/engines.md``). A damaged or unreadable saved graph is removed and the
            source optimized again; a folder that cannot be written only costs the saving.

    Attributes:
        from_optimized: whether this session was loaded from a saved optimized graph.
    """

    precision = "fp32"

    def __init__(self, path: Path, threads: int, optimized_dir: Path | None = None) -> None:
        import onnxruntime as ort

        self._ort, self.threads = ort, threads
        self.from_optimized = False
        self.session: Any = None
        target = optimized_dir / optimized_name(path, str(ort.__version__)) if optimized_dir else None
        if target is not None and target.is_file():
            try:
                self.session = self._session(target, optimize=False)
                self.from_optimized = True
            except Exception:  # noqa: BLE001 - a damaged saved graph: optimize the source again
                target.unlink(missing_ok=True)
        if self.session is None:
            self.session = self._save_optimized(path, target) if target is not None else None
        if self.session is None:
            self.session = self._session(path, optimize=True)
        self.input = self.session.get_inputs()[0].name

    def _session(self, path: Path, optimize: bool, save_to: Path | None = None) -> Any:
        ort = self._ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        if not optimize:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if save_to is not None:
            options.optimized_model_filepath = str(save_to)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _save_optimized(self, path: Path, target: Path) -> Any:
        """A session of ``path`` that saves its optimized graph as ``target``; None where the
        folder cannot be written or saving failed (the caller then creates a plain session)."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=target.parent)
            os.close(fd)
        except OSError:
            return None
        tmp = Path(tmp_name)
        try:
            session = self._session(path, optimize=True, save_to=tmp)
            if tmp.stat().st_size == 0:
                return session
            os.replace(tmp, target)
            return session
        except Exception:  # noqa: BLE001 - a full disk, an unwritable file: run without saving
            return None
        finally:
            tmp.unlink(missing_ok=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _joined(self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)}))


def engine_version(engine: str) -> str:
    """The installed version of ``openvino`` or ``onnxruntime`` (imports it)."""
    if engine == "openvino":
        import openvino

        return str(openvino.__version__)
    import onnxruntime

    return str(onnxruntime.__version__)
