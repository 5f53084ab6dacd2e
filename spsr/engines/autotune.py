"""``--engine auto`` on a CPU without native bf16: the engine measured fastest, once per machine.

Where the CPU has no native bf16 (AVX2-class CPUs, AVX-512 without BF16), no engine wins
everywhere: spsr's fused/Winograd PyTorch kernels, OpenVINO f32 and ONNX Runtime traded places
between machines, loads and models (``docs/guide/engines.md``). So ``auto`` measures there:

* the candidates are PyTorch (spsr's torch engine) and each installed engine that can compute in
  the run's precision (OpenVINO: f32 or bf16; ONNX Runtime: fp32 only);
* each is prepared (a converted engine converts the model, or reuses its cached conversion) and
  run once on one tile of the run's tile size (``1×3×tile×tile``, random pixels, the run's
  precision; at most 128², smaller for a model that heavy, :func:`measured_side`) as a warm-up
  (compilation, buffers); an engine whose preparation or warm-up fails is dropped with one line;
* then up to :data:`RUNS` rounds time the candidates in alternation (so a load that comes and
  goes on a shared machine hits them all), stopping early once the rounds took
  :data:`BUDGET_S` seconds; the lowest median wins (a tie goes to the earlier candidate,
  PyTorch first);
* the winner is kept as a small JSON file, ``<cache root>/engines/choice/<key>.json``, written
  atomically. The key is a SHA-256 over the machine (CPU model name, the ISA flags that pick
  kernels, the kernel-capping environment variables, PyTorch's thread count), the weights'
  digest (the conversion cache's), spsr's version, the candidates and their versions, the
  precision and the tile shape. A later run with the same key reads the file and measures
  nothing; ``--engine-retune`` (``Upscaler(engine_retune=True)``) measures again; a file that
  cannot be read or parsed is measured again with one line.

The clock, the candidates and the number of rounds can be injected (the tests use a fake clock
and fake runners).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import spsr
from spsr import cpu
from spsr.engines.base import (
    Engine,
    EngineUnavailable,
    NoteCallback,
    Runner,
    RunSpec,
    precision_name,
)
from spsr.errors import SpsrError

#: Timed rounds at most (each runs every candidate once), after the warm-up.
RUNS = 3
#: The timed rounds stop after this many seconds in all (at least one round runs).
BUDGET_S = 10.0
#: The largest tile side measured (also for untiled runs, ``--tile 0``): every engine's time grows
#: with a tile's pixels, so a 128² tile ranks the engines as a 256² one does (measured alike on
#: the AMD EPYC in docs/guide/engines.md) for a quarter of the one-time cost.
MEASURED_SIDE = 128
#: The most FLOPs one measured tile may cost: a model heavier than this at a 128² tile is measured
#: on a smaller square tile (a multiple of 16, at least :data:`MIN_MEASURED_SIDE`). The full
#: SPSR-G (105 MFLOP an LR pixel) is measured on 64² instead of 128², a quarter of the first run's
#: measuring; the built-in model (13.7 MFLOP an LR pixel, 225 GFLOP at 128²) keeps 128².
MEASURED_FLOPS = 512e9
#: The smallest tile side :func:`measured_side` gives (per-call overheads stay small next to it).
MIN_MEASURED_SIDE = 32
#: Cache sub-folder of the choices, under the conversion cache's root.
CHOICE_DIR = "choice"

Clock = Callable[[], float]
#: The clock :func:`tuned_engine` measures with unless it is given one (tests replace it).
now: Clock = time.perf_counter
#: Exceptions that drop a candidate: it cannot be prepared (conversion) or run (first run).
CANDIDATE_ERRORS: tuple[type[Exception], ...] = (EngineUnavailable, RuntimeError, ValueError, MemoryError)


@dataclass(frozen=True)
class Candidate:
    """An engine ``auto`` may measure: its name, its library's version (part of the key) and how
    to prepare a runner for the model."""

    name: str
    version: str
    prepare: Callable[[], Runner]


@dataclass
class Choice:
    """What ``auto`` chose for a CPU without native bf16.

    Attributes:
        engine: the engine's name.
        runner: the winner's runner, prepared for the measured tile (None on a cache hit).
        measured: True when this call measured (False: the cached choice).
        seconds: median seconds per candidate that ran (empty on a cache hit).
        dropped: the candidates that could not run, and why.
        path: the choice file (None where it could not be written).
    """

    engine: str
    runner: Runner | None = None
    measured: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def machine_id() -> dict[str, Any]:
    """What identifies this machine's speed for the choice: the CPU's model name, the ISA flags
    that pick kernels, the variables that cap them, and PyTorch's thread count."""
    return {"cpu": cpu.cpu_model_name(), "flags": list(cpu.kernel_flags()), "env": cpu.kernel_env(),
            "threads": torch.get_num_threads()}


def choice_key(machine: Mapping[str, Any], digest: str, precision: str, shape: Sequence[int],
               engines: Mapping[str, str]) -> str:
    """The key of a measured choice (hex, 32 characters): machine, weights digest, spsr version,
    candidates and their versions, precision and tile shape."""
    parts = {"machine": dict(machine), "digest": digest, "spsr": spsr.__version__, "precision": precision,
             "shape": [int(s) for s in shape], "engines": dict(sorted(engines.items()))}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def choice_path(key: str) -> Path:
    """``<cache root>/engines/choice/<key>.json``."""
    from spsr.engines.cache import cache_root

    return cache_root() / CHOICE_DIR / f"{key}.json"


class DamagedChoice(ValueError):
    """A choice file that exists but cannot be read, parsed or used."""


def read_choice(path: Path, names: Sequence[str]) -> str | None:
    """The cached winner in ``path``, or None where there is no file.

    Raises:
        DamagedChoice: the file cannot be read or parsed, or names no candidate of ``names``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedChoice(str(exc)) from None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise DamagedChoice(f"not JSON ({exc})") from None
    winner = record.get("winner") if isinstance(record, dict) else None
    if not isinstance(winner, str) or winner not in names:
        raise DamagedChoice(f"no usable winner ({winner!r})")
    return winner


def write_choice(path: Path, record: Mapping[str, Any]) -> None:
    """Write a choice file atomically (a crash leaves the old file or none).

    Raises:
        OSError, SpsrError: it cannot be written (read-only or full cache).
    """
    from spsr.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def flops_per_pixel(model: torch.nn.Module, probe: int = 8) -> float:
    """FLOPs (two per multiply-add) of the model's convolutions per input pixel, counted with
    forward hooks on one ``1×3×probe×probe`` forward in fp32 on the model's device (the networks are
    fully convolutional: the count grows with the input's pixels)."""
    macs = 0

    def count(module: torch.nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        nonlocal macs
        kh, kw = module.kernel_size  # type: ignore[misc]
        per_output = (module.in_channels // module.groups) * kh * kw  # type: ignore[operator]
        if isinstance(module, torch.nn.ConvTranspose2d):
            macs += inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        else:
            macs += output.numel() * per_output

    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, convs)]
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            model(torch.zeros(1, 3, probe, probe, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return 2.0 * macs / (probe * probe)


def measured_side(tile: int, model_flops_per_pixel: float) -> int:
    """The side of the tile ``auto`` measures: the run's tile (:data:`MEASURED_SIDE` for untiled
    runs), at most :data:`MEASURED_SIDE`, and smaller for a model whose tile would cost more than
    :data:`MEASURED_FLOPS` (a multiple of 16, at least :data:`MIN_MEASURED_SIDE`)."""
    side = min(tile or MEASURED_SIDE, MEASURED_SIDE)
    if model_flops_per_pixel * side * side > MEASURED_FLOPS:
        fit = int((MEASURED_FLOPS / model_flops_per_pixel) ** 0.5) // 16 * 16
        side = min(side, max(MIN_MEASURED_SIDE, fit))
    return side


def _why(exc: BaseException) -> str:
    """One line: an :class:`EngineUnavailable`'s message, else the error's type and first line."""
    from spsr.engines.converted import first_line

    text = str(exc).strip()
    return text.splitlines()[0][:200] if isinstance(exc, EngineUnavailable) and text else first_line(exc)


def measure(candidates: Sequence[Candidate], x: torch.Tensor, *, clock: Clock | None = None,
            runs: int = RUNS, budget_s: float = BUDGET_S,
            on_note: NoteCallback | None = None) -> tuple[dict[str, float], dict[str, str], dict[str, Runner]]:
    """Prepare and warm up each candidate on ``x``, then time them in alternating rounds.

    Returns:
        ``(medians, dropped, runners)``: the median seconds of each candidate that ran, the reason
        of each that could not, and the prepared runners of the former.
    """
    clock = clock or now
    runners: dict[str, Runner] = {}
    dropped: dict[str, str] = {}

    def drop(name: str, exc: BaseException) -> None:
        dropped[name] = _why(exc)
        runners.pop(name, None)
        if on_note is not None:
            on_note(f"engine auto: {name} cannot run this model ({dropped[name]}); measured without it")

    for c in candidates:
        try:
            runner = c.prepare()
            runner(x)  # warm-up: compilation, buffers, caches
        except CANDIDATE_ERRORS as exc:
            drop(c.name, exc)
            continue
        runners[c.name] = runner
    times: dict[str, list[float]] = {name: [] for name in runners}
    start = clock()
    for _ in range(max(1, runs)):
        for name in list(runners):
            t = clock()
            try:
                runners[name](x)
            except CANDIDATE_ERRORS as exc:
                drop(name, exc)
                times.pop(name)
                continue
            times[name].append(clock() - t)
        if clock() - start >= budget_s:
            break
    return {name: statistics.median(ts) for name, ts in times.items()}, dropped, runners


def default_candidates(spec: RunSpec, on_note: NoteCallback | None = None,
                       channels_last: bool = True) -> list[Candidate]:
    """PyTorch, then each installed engine that can run on ``spec.device`` in ``spec.dtype``
    (OpenVINO: fp32 or bf16; ONNX Runtime: fp32)."""
    from spsr.engines import ENGINES
    from spsr.engines.torch_engine import TorchRunner

    def prepared_by(engine: Engine) -> Callable[[], Runner]:
        return lambda: engine.prepare(spec, on_note)

    out = [Candidate("torch", torch.__version__, lambda: TorchRunner(spec, channels_last))]
    for name in ("openvino", "onnxruntime"):
        engine = ENGINES[name]
        if engine.unavailable_reason(spec.device) is not None or spec.dtype not in engine.dtypes:
            continue
        out.append(Candidate(name, engine.version(), prepared_by(engine)))
    return out


def measured_line(shape: Sequence[int], seconds: Mapping[str, float], winner: str, path: Path | None) -> str:
    """``engine auto: measured one 1×3×128×128 tile — torch 0.41 s, ... → torch (cached in ...)``."""
    tile = "×".join(str(int(s)) for s in shape)
    times = ", ".join(f"{name} {s:.2f} s" for name, s in seconds.items())
    where = f"cached in {path}" if path is not None else "not cached"
    return f"engine auto: measured one {tile} tile — {times} → {winner} ({where}; --engine-retune measures again)"


def tuned_engine(
    spec: RunSpec,
    shape: Sequence[int],
    *,
    retune: bool = False,
    on_note: NoteCallback | None = None,
    candidates: Sequence[Candidate] | None = None,
    clock: Clock | None = None,
    runs: int = RUNS,
    budget_s: float = BUDGET_S,
    channels_last: bool = True,
) -> Choice:
    """``auto``'s engine for ``spec`` on a CPU without native bf16: the cached choice for this
    machine, model, spsr version, precision and tile shape, else (or with ``retune``) measured
    on one tile of ``shape`` and cached (see the module docstring).

    Args:
        spec: the model as the run will prepare it (``spec.cache_key`` is the weights' digest;
            None computes it).
        shape: the tile measured, ``(1, 3, h, w)``.
        retune: measure even when a choice is cached.
        on_note: receives the one-line notes (the measurement, a dropped candidate, a damaged file).
        candidates: the engines to measure (default: :func:`default_candidates`).
        clock: seconds, monotonic (default: :data:`now`, ``time.perf_counter``).
        runs: timed rounds at most.
        budget_s: seconds after which no further round starts.
        channels_last: the torch candidate's input memory format.
    """
    from spsr.engines.cache import weights_digest

    def note(text: str) -> None:
        if on_note is not None:
            on_note(text)

    digest = spec.cache_key or weights_digest(spec.model)
    if spec.cache_key is None:
        from dataclasses import replace

        spec = replace(spec, cache_key=digest)
    if candidates is None:
        candidates = default_candidates(spec, on_note, channels_last)
    names = [c.name for c in candidates]
    if len(candidates) == 1:  # nothing to compare: no measurement, no file
        return Choice(candidates[0].name)
    machine = machine_id()
    precision = precision_name(spec.dtype)
    engines = {c.name: c.version for c in candidates}
    path = choice_path(choice_key(machine, digest, precision, shape, engines))
    if not retune:
        try:
            winner = read_choice(path, names)
        except DamagedChoice as exc:
            note(f"engine auto: the cached choice {path} is unusable ({exc}): measuring again")
            winner = None
        if winner is not None:
            return Choice(winner, path=path)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(*shape, generator=generator)
    seconds, dropped, runners = measure(candidates, x, clock=clock, runs=runs, budget_s=budget_s, on_note=on_note)
    if not seconds:  # nothing ran: PyTorch, whose own error the run will then show
        return Choice("torch", measured=True, dropped=dropped)
    winner = min(seconds, key=lambda name: (seconds[name], names.index(name)))
    record = {"winner": winner, "seconds": {k: round(v, 4) for k, v in seconds.items()}, "dropped": dropped,
              "shape": [int(s) for s in shape], "precision": precision, "machine": machine,
              "engines": engines, "spsr": spsr.__version__, "digest": digest,
              "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    written: Path | None = path
    try:
        write_choice(path, record)
    except (OSError, SpsrError) as exc:
        written = None
        note(f"engine auto: cannot cache the measured choice ({exc}); the next run measures again")
    note(measured_line(shape, seconds, winner, written))
    return Choice(winner, runners[winner], measured=True, seconds=seconds, dropped=dropped, path=written)
