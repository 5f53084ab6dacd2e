"""``--engine auto`` chosen by measurement (spsr.engines.autotune): the winner is the lowest median,
cached per machine, model, spsr version, precision and tile shape; ``engine_retune`` and a damaged
file measure again; a failing candidate is dropped; native-bf16 CPUs and CUDA keep the static rule.

Every engine here is a fake with a fake clock (no OpenVINO or ONNX Runtime is imported: those live
in tests/engines/native_runtimes/, whose test_engines.py runs the real engines through ``auto``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import spsr
from spsr.archs import ArchSpec, build_model
from spsr.engines import MEASURE, EngineUnavailable, RunSpec, auto_engine, autotune, choose_engine
from spsr.engines.autotune import Candidate, choice_key, choice_path, tuned_engine
from spsr.engines.base import Runner
from spsr.infer import TiledUpscaler

SHAPE = (1, 3, 16, 16)


class FakeClock:
    """Seconds that pass only when a fake runner says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeRunner(Runner):
    """Takes the next of ``costs`` seconds (the last one repeats) on each call, or raises ``fail``
    on call number ``fail_at`` (0: the warm-up)."""

    precision = "fp32"

    def __init__(self, name: str, clock: FakeClock, costs: Sequence[float],
                 fail_at: int | None = None, fail: Exception | None = None) -> None:
        self.engine = name
        self.clock = clock
        self.costs = list(costs)
        self.calls = 0
        self.fail_at = fail_at
        self.fail = fail or RuntimeError("Illegal instruction\nin a kernel")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = self.calls
        self.calls += 1
        if self.fail_at is not None and n == self.fail_at:
            raise self.fail
        self.clock.now += self.costs[min(n, len(self.costs) - 1)]
        return torch.zeros(x.shape[0], 3, x.shape[2] * 4, x.shape[3] * 4)


class Fakes:
    """Fake candidates and a count of how often each was prepared."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.prepared: dict[str, int] = {}
        self.runners: dict[str, FakeRunner] = {}

    def candidate(self, name: str, costs: Sequence[float], version: str = "1.0",
                  fail_at: int | None = None, prepare_error: Exception | None = None) -> Candidate:
        def prepare() -> Runner:
            self.prepared[name] = self.prepared.get(name, 0) + 1
            if prepare_error is not None:
                raise prepare_error
            runner = self.runners[name] = FakeRunner(name, self.clock, costs, fail_at)
            return runner

        return Candidate(name, version, prepare)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Choices go to this test's cache, never the user's."""
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def spec() -> RunSpec:
    torch.manual_seed(0)
    model = build_model(ArchSpec("spsr", 4, nf=8, nb=1, gc=4)).eval()
    return RunSpec(model, False, torch.float32, torch.device("cpu"), cache_key="digest-a")


def run(spec: RunSpec, candidates: Sequence[Candidate], clock: FakeClock, notes: list[str] | None = None,
        **kwargs: object) -> autotune.Choice:
    return tuned_engine(spec, SHAPE, candidates=candidates, clock=clock,
                        on_note=None if notes is None else notes.append, **kwargs)  # type: ignore[arg-type]


def test_the_lowest_median_wins_and_one_line_says_so(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    # torch: a slow warm-up and one slow timed run (a neighbour's burst), but the lowest median.
    candidates = [fakes.candidate("torch", [9.0, 0.5, 3.0, 0.5]), fakes.candidate("openvino", [2.0, 0.6]),
                  fakes.candidate("onnxruntime", [1.0, 0.7])]
    notes: list[str] = []
    choice = run(spec, candidates, clock, notes)
    assert choice.engine == "torch" and choice.measured
    assert choice.seconds == pytest.approx({"torch": 0.5, "openvino": 0.6, "onnxruntime": 0.7})
    assert choice.runner is fakes.runners["torch"]  # the prepared winner is handed on, not rebuilt
    assert [r.calls for r in fakes.runners.values()] == [4, 4, 4]  # a warm-up and three rounds
    assert len(notes) == 1
    assert notes[0] == (f"engine auto: measured one 1×3×16×16 tile — torch 0.50 s, openvino 0.60 s, "
                        f"onnxruntime 0.70 s → torch (cached in {choice.path}; --engine-retune measures again)")
    record = json.loads(Path(str(choice.path)).read_text(encoding="utf-8"))
    assert record["winner"] == "torch" and record["shape"] == list(SHAPE) and record["precision"] == "fp32"
    assert record["engines"] == {"torch": "1.0", "openvino": "1.0", "onnxruntime": "1.0"}
    assert record["digest"] == "digest-a" and record["spsr"] == spsr.__version__
    assert Path(str(choice.path)).parent == _cache_dir()


def _cache_dir() -> Path:
    from spsr.engines.cache import cache_root

    return cache_root() / "choice"


def test_a_converted_engine_wins_where_it_is_faster(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    choice = run(spec, [fakes.candidate("torch", [0.9]), fakes.candidate("openvino", [0.4]),
                        fakes.candidate("onnxruntime", [0.45])], clock)
    assert choice.engine == "openvino" and choice.runner is fakes.runners["openvino"]


def test_a_tie_goes_to_the_earlier_candidate(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    choice = run(spec, [fakes.candidate("torch", [0.5]), fakes.candidate("openvino", [0.5])], clock)
    assert choice.engine == "torch"


def test_a_cached_choice_measures_nothing_and_says_nothing(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    first = run(spec, [fakes.candidate("torch", [0.9]), fakes.candidate("openvino", [0.4])], clock)
    assert first.engine == "openvino" and fakes.prepared == {"torch": 1, "openvino": 1}
    # Now torch would be faster, but the cached choice stands: nothing is prepared or run again.
    again = Fakes(clock)
    notes: list[str] = []
    second = run(spec, [again.candidate("torch", [0.1]), again.candidate("openvino", [0.4])], clock, notes)
    assert second.engine == "openvino" and not second.measured and second.runner is None
    assert again.prepared == {} and notes == [] and second.path == first.path


def test_engine_retune_measures_again_and_replaces_the_choice(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    first = run(spec, [fakes.candidate("torch", [0.9]), fakes.candidate("openvino", [0.4])], clock)
    notes: list[str] = []
    again = Fakes(clock)
    second = run(spec, [again.candidate("torch", [0.1]), again.candidate("openvino", [0.4])], clock, notes,
                 retune=True)
    assert first.engine == "openvino" and second.engine == "torch" and second.measured
    assert again.prepared == {"torch": 1, "openvino": 1} and len(notes) == 1 and "→ torch" in notes[0]
    assert json.loads(Path(str(second.path)).read_text(encoding="utf-8"))["winner"] == "torch"
    third = Fakes(clock)
    assert run(spec, [third.candidate("torch", [5.0]), third.candidate("openvino", [0.4])], clock).engine == "torch"
    assert third.prepared == {}


@pytest.mark.parametrize("content", [b"{\"winner\": \"torc", b"\xff\xfe\x00garbage", b"[1, 2]",
                                     b"{\"winner\": \"tensorrt\"}", b"{\"winner\": 3}"])
def test_a_damaged_choice_file_is_measured_again_with_one_line(
    spec: RunSpec, clock: FakeClock, content: bytes
) -> None:
    fakes = Fakes(clock)
    first = run(spec, [fakes.candidate("torch", [0.9]), fakes.candidate("openvino", [0.4])], clock)
    path = Path(str(first.path))
    path.write_bytes(content)
    notes: list[str] = []
    again = Fakes(clock)
    second = run(spec, [again.candidate("torch", [0.9]), again.candidate("openvino", [0.4])], clock, notes)
    assert second.measured and second.engine == "openvino" and again.prepared == {"torch": 1, "openvino": 1}
    assert len(notes) == 2 and "unusable" in notes[0] and str(path) in notes[0] and "measuring again" in notes[0]
    assert "measured one" in notes[1]
    assert json.loads(path.read_text(encoding="utf-8"))["winner"] == "openvino"  # repaired


@pytest.mark.parametrize("how", ["prepare", "warm-up", "timed run"])
def test_a_failing_candidate_is_dropped_with_one_line(spec: RunSpec, clock: FakeClock, how: str) -> None:
    fakes = Fakes(clock)
    broken = {
        "prepare": fakes.candidate("openvino", [0.1], prepare_error=EngineUnavailable(
            "openvino could not convert the model (RuntimeError: op)")),
        "warm-up": fakes.candidate("openvino", [0.1], fail_at=0),
        "timed run": fakes.candidate("openvino", [0.1], fail_at=2),
    }[how]
    notes: list[str] = []
    choice = run(spec, [fakes.candidate("torch", [0.9]), broken, fakes.candidate("onnxruntime", [0.5])],
                 clock, notes)
    assert choice.engine == "onnxruntime" and "openvino" not in choice.seconds
    assert list(choice.dropped) == ["openvino"]
    assert len(notes) == 2 and notes[0].startswith("engine auto: openvino cannot run this model (")
    assert "\n" not in notes[0] and "measured without it" in notes[0]
    assert ("could not convert" if how == "prepare" else "Illegal instruction") in notes[0]
    assert "openvino" not in notes[1] and "→ onnxruntime" in notes[1]
    record = json.loads(Path(str(choice.path)).read_text(encoding="utf-8"))
    assert set(record["seconds"]) == {"torch", "onnxruntime"} and "openvino" in record["dropped"]


def test_nothing_to_compare_or_nothing_that_runs_means_torch(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    alone = run(spec, [fakes.candidate("torch", [0.9])], clock)
    assert alone.engine == "torch" and not alone.measured and alone.path is None and fakes.prepared == {}
    assert not _cache_dir().exists()
    notes: list[str] = []
    none = run(spec, [fakes.candidate("torch", [0.9], fail_at=0), fakes.candidate("openvino", [0.1], fail_at=0)],
               clock, notes)
    assert none.engine == "torch" and none.runner is None and none.path is None and len(notes) == 2
    assert not _cache_dir().exists()  # nothing measured: nothing cached


def test_the_rounds_stop_at_the_budget(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    choice = run(spec, [fakes.candidate("torch", [1.0, 30.0]), fakes.candidate("openvino", [1.0, 25.0])],
                 clock, budget_s=20.0)
    assert [r.calls for r in fakes.runners.values()] == [2, 2]  # warm-up and one round only
    assert choice.engine == "openvino"


def test_an_unwritable_cache_still_chooses_with_a_line(
    spec: RunSpec, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, record: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(autotune, "write_choice", refuse)
    fakes = Fakes(clock)
    notes: list[str] = []
    choice = run(spec, [fakes.candidate("torch", [0.9]), fakes.candidate("openvino", [0.4])], clock, notes)
    assert choice.engine == "openvino" and choice.path is None
    assert len(notes) == 2 and "cannot cache" in notes[0] and "(not cached;" in notes[1]


def test_the_key_changes_with_machine_model_version_precision_tile_and_engines(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = {"cpu": "AMD EPYC", "flags": ["avx", "avx2", "fma"], "env": {}, "threads": 2}
    engines = {"torch": "2.14", "openvino": "2026.4"}
    base = choice_key(machine, "digest-a", "fp32", SHAPE, engines)
    assert base == choice_key(dict(machine), "digest-a", "fp32", list(SHAPE), dict(reversed(engines.items())))
    assert len(base) == 32 and choice_path(base).name == f"{base}.json"
    variants = [
        choice_key(machine, "digest-b", "fp32", SHAPE, engines),
        choice_key(machine, "digest-a", "bf16", SHAPE, engines),
        choice_key(machine, "digest-a", "fp32", (1, 3, 32, 32), engines),
        choice_key(machine, "digest-a", "fp32", SHAPE, {**engines, "onnxruntime": "1.32"}),
        choice_key(machine, "digest-a", "fp32", SHAPE, {**engines, "openvino": "2027.0"}),
        choice_key({**machine, "threads": 4}, "digest-a", "fp32", SHAPE, engines),
        choice_key({**machine, "cpu": "Intel Xeon"}, "digest-a", "fp32", SHAPE, engines),
        choice_key({**machine, "env": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}, "digest-a", "fp32", SHAPE, engines),
    ]
    monkeypatch.setattr(spsr, "__version__", "99.0")
    variants.append(choice_key(machine, "digest-a", "fp32", SHAPE, engines))
    assert len({base, *variants}) == len(variants) + 1


def test_the_machine_id_names_the_cpu_flags_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import spsr.cpu as cpu

    cpuinfo = ("processor\t: 0\nmodel name\t: AMD EPYC 9654\n"
               "flags\t\t: fpu sse2 avx avx2 fma f16c avx512f avx512_bf16 sha_ni\n")
    monkeypatch.setattr(cpu, "_cpu_flags", lambda: cpuinfo)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("MKL_ENABLE_INSTRUCTIONS", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 7)
    assert autotune.machine_id() == {"cpu": "AMD EPYC 9654", "flags": ["avx", "avx2", "fma", "f16c", "avx512f",
                                                                        "avx512_bf16"],
                                     "env": {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "threads": 7}


def test_the_key_follows_the_weights(spec: RunSpec, clock: FakeClock) -> None:
    fakes = Fakes(clock)
    a = run(spec, [fakes.candidate("torch", [0.9]), fakes.candidate("openvino", [0.4])], clock)
    other = RunSpec(spec.model, False, torch.float32, torch.device("cpu"), cache_key="digest-b")
    b = tuned_engine(other, SHAPE, candidates=[fakes.candidate("torch", [0.1]), fakes.candidate("openvino", [0.4])],
                     clock=clock)
    assert b.measured and b.engine == "torch" and a.path != b.path
    # Without a cache key the weights' digest is computed (the conversion cache's).
    from spsr.engines.cache import weights_digest

    c = tuned_engine(RunSpec(spec.model, False, torch.float32, torch.device("cpu")), SHAPE,
                     candidates=[fakes.candidate("torch", [0.1]), fakes.candidate("openvino", [0.4])], clock=clock)
    assert json.loads(Path(str(c.path)).read_text(encoding="utf-8"))["digest"] == weights_digest(spec.model)


def test_native_bf16_cpus_and_cuda_keep_the_static_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import spsr.cpu as cpu
    from spsr.engines import ENGINES

    def never() -> str:
        raise AssertionError("measured where the rule is static")

    cuda = torch.device("cuda")
    assert auto_engine(cuda)[0] == "torch" and choose_engine("auto", cuda, measure=never)[0].name == "torch"
    monkeypatch.setattr(cpu, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(type(ENGINES["openvino"]), "import_error", lambda self: None)
    cpu_dev = torch.device("cpu")
    assert auto_engine(cpu_dev)[0] == "openvino"
    assert choose_engine("auto", cpu_dev, measure=never)[0].name == "openvino"
    monkeypatch.setattr(cpu, "cpu_has_fast_bf16", lambda: False)
    assert auto_engine(cpu_dev)[0] == MEASURE
    assert choose_engine("auto", cpu_dev, measure=lambda: "onnxruntime")[0].name == "onnxruntime"
    assert choose_engine("auto", cpu_dev)[0].name == "torch"  # nothing to measure with: PyTorch
    assert choose_engine("torch", cpu_dev, measure=never)[0].name == "torch"


def fake_candidates(clock: FakeClock, costs: dict[str, float], log: list[str]) -> Callable[..., list[Candidate]]:
    """A stand-in for default_candidates: the real torch runner timed by ``clock`` at ``costs``."""
    from spsr.engines.torch_engine import TorchRunner

    def make(spec: RunSpec, on_note: object = None, channels_last: bool = True) -> list[Candidate]:
        log.append(f"candidates {spec.dtype} {spec.cache_key is not None}")

        class Timed(TorchRunner):
            def __call__(self, x: torch.Tensor) -> torch.Tensor:
                clock.now += costs[self.engine]
                return super().__call__(x)

        def prepare(name: str) -> Runner:
            runner = Timed(spec, channels_last)
            runner.engine = name
            return runner

        return [Candidate(name, "1.0", lambda name=name: prepare(name)) for name in costs]

    return make


def _no_native_bf16(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    import spsr.cpu as cpu

    monkeypatch.setattr(cpu, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(autotune, "now", clock)


def test_the_tiled_upscaler_measures_its_tile_once_and_keeps_the_winner(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, spec: RunSpec
) -> None:
    _no_native_bf16(monkeypatch, clock)
    log: list[str] = []
    monkeypatch.setattr(autotune, "default_candidates", fake_candidates(clock, {"torch": 0.9, "onnxruntime": 0.3}, log))
    notes: list[str] = []
    up = TiledUpscaler(spec.model, 4, tile=16, overlap=4, precision="fp32", engine="auto", on_note=notes.append)
    assert up.engine == "onnxruntime" and log == ["candidates torch.float32 True"]
    assert len(notes) == 1 and "measured one 1×3×16×16 tile" in notes[0] and "→ onnxruntime" in notes[0]
    assert up.describe() == "onnxruntime fp32"
    winner = up._runners[False]
    out = up(torch.rand(3, 20, 20))  # runs through the runner that was measured
    assert out.shape == (3, 80, 80) and up._runners[False] is winner
    # A second upscaler with the same model and tile: the cached choice, no measurement.
    notes.clear()
    again = TiledUpscaler(spec.model, 4, tile=16, overlap=4, precision="fp32", engine="auto", on_note=notes.append)
    assert again.engine == "onnxruntime" and notes == [] and again._runners == {}
    # Another tile size is another key; --tile 0 and tiles over 128² measure a 128² tile.
    for tile in (0, 256):
        up = TiledUpscaler(spec.model, 4, tile=tile, precision="fp32", engine="torch")
        assert up.measured_tile() == (1, 3, 128, 128)
    assert TiledUpscaler(spec.model, 4, tile=96, precision="fp32", engine="torch").measured_tile() == (1, 3, 96, 96)
    # A model too heavy for a 128² tile (the budget lowered to this tiny one's cost) gets a smaller one.
    monkeypatch.setattr(autotune, "MEASURED_FLOPS", autotune.flops_per_pixel(spec.model) * 50 * 50)
    assert TiledUpscaler(spec.model, 4, tile=0, precision="fp32", engine="torch").measured_tile() == (1, 3, 48, 48)
    retuned = TiledUpscaler(spec.model, 4, tile=16, overlap=4, precision="fp32", engine="auto",
                            on_note=notes.append, engine_retune=True)
    assert retuned.engine == "onnxruntime" and len(notes) == 1 and "measured one" in notes[0]


def test_upscaler_and_cli_pass_engine_retune_on(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, tiny_spsr_weights: Path, tmp_path: Path
) -> None:
    import numpy as np

    from spsr import Upscaler
    from spsr.data.image_io import write_image
    from spsr_cli.app import app

    _no_native_bf16(monkeypatch, clock)
    log: list[str] = []
    monkeypatch.setattr(autotune, "default_candidates", fake_candidates(clock, {"torch": 0.2, "openvino": 0.5}, log))
    kwargs = {"engine": "auto", "precision": "fp32", "tile": 16, "device": "cpu", "tile_overlap": 4}
    first = Upscaler(str(tiny_spsr_weights), **kwargs)  # type: ignore[arg-type]
    assert first.tiled.engine == "torch" and len(log) == 1 and any("measured one" in n for n in first.notes)
    cached = Upscaler(str(tiny_spsr_weights), **kwargs)  # type: ignore[arg-type]
    assert len(log) == 2 and not any("measured one" in n for n in cached.notes)  # candidates listed, none run
    retuned = Upscaler(str(tiny_spsr_weights), engine_retune=True, **kwargs)  # type: ignore[arg-type]
    assert any("measured one" in n for n in retuned.notes)

    write_image(tmp_path / "in.png", np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    runner = CliRunner()
    args = ["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--weights", str(tiny_spsr_weights),
            "--precision", "fp32", "--engine", "auto", "--tile", "16", "--tile-overlap", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "measured one" not in result.output and "torch fp32" in result.output  # cached above
    result = runner.invoke(app, [*args, "--engine-retune", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert result.output.count("engine auto: measured one 1×3×16×16 tile") == 1
    assert (tmp_path / "out.png").is_file()


def test_engine_retune_is_declared_once_for_every_command_with_engine() -> None:
    import typer.main

    from spsr_cli.app import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for name in ("upscale", "gradmap", "eval"):
        options = {o: p for p in commands[name].params for o in p.opts}
        assert "--engine" in options and "--engine-retune" in options, name
        assert options["--engine-retune"].is_flag and options["--engine-retune"].default is False
        assert "measure the engines again" in (options["--engine-retune"].help or "")


def test_flops_per_pixel_counts_every_convolution_at_its_resolution() -> None:
    # conv 3→8 at LR, a ×2 transposed conv 8→4 (k 2, stride 2), conv 4→3 at 2× the pixels:
    # multiply-adds per LR pixel 3·8·9 + 8·4·4 + 4 (HR pixels per LR pixel) · 4·3·9.
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ConvTranspose2d(8, 4, 2, stride=2),
                              torch.nn.Conv2d(4, 3, 3, padding=1))
    assert autotune.flops_per_pixel(net) == 2 * (3 * 8 * 9 + 8 * 4 * 4 + 4 * 4 * 3 * 9)
    assert not any(m._forward_hooks for m in net.modules())  # the hooks are removed
    grouped = torch.nn.Conv2d(8, 8, 3, padding=1, groups=4)
    assert autotune.flops_per_pixel(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), grouped)) == 2 * (3 * 8 + 8 * 2 * 9)


def test_full_spsr_g_is_measured_on_a_smaller_tile() -> None:
    full = 104.8e6  # the full SPSR-G's FLOPs per LR pixel (1.717 TFLOP at 128² → 512²)
    assert autotune.measured_side(0, full) == 64 and autotune.measured_side(256, full) == 64
    assert autotune.measured_side(48, full) == 48  # never above the run's own tile
    assert autotune.measured_side(0, 13.7e6) == 128  # the built-in model keeps 128²
    assert autotune.measured_side(0, 1e12) == autotune.MIN_MEASURED_SIDE
