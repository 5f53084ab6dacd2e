"""Inference engines (spsr.engines): the choice, fallbacks, the conversion cache, and results
within a grey level of PyTorch (fp32) or within the bf16 band (max ≤ 8, mean ≤ 0.6 levels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from spsr.archs import ArchSpec, build_model
from spsr.cpu import cpu_has_fast_bf16
from spsr.engines import (
    ENGINES,
    MEASURE,
    EngineUnavailable,
    RunSpec,
    auto_engine,
    choose_engine,
    get_engine,
)
from spsr.engines.cache import cached_conversion, weights_digest
from spsr.errors import ConfigError
from spsr.infer import TiledUpscaler

CONVERTED = [
    pytest.param("openvino", marks=pytest.mark.skipif(ENGINES["openvino"].import_error() is not None,
                                                      reason="openvino is not installed")),
    pytest.param("onnxruntime", marks=pytest.mark.skipif(ENGINES["onnxruntime"].import_error() is not None,
                                                         reason="onnxruntime is not installed")),
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Conversions go to a cache of this test session, never the user's."""
    root = tmp_path_factory.getbasetemp() / "engine cache"
    monkeypatch.setenv("SPSR_CACHE", str(root))
    return root


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(3)
    return build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4)).eval()


def _levels(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Max and mean absolute difference in 8-bit grey levels of two [0, 1] images."""
    d = (a.clamp(0, 1) * 255).round() - (b.clamp(0, 1) * 255).round()
    return float(d.abs().max()), float(d.abs().float().mean())


def test_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown engine 'tensorrt'"):
        get_engine("tensorrt")
    with pytest.raises(ConfigError, match="unknown engine"):
        TiledUpscaler(torch.nn.Identity(), 1, engine="tensorrt")


def test_auto_picks_torch_on_cuda_and_by_the_cpu_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    import spsr.cpu as cpu

    assert auto_engine(torch.device("cuda"))[0] == "torch"
    monkeypatch.setattr(cpu, "cpu_has_fast_bf16", lambda: False)
    assert auto_engine(torch.device("cpu"))[0] == MEASURE  # tests/engines/test_engine_autotune.py, and below
    monkeypatch.setattr(cpu, "cpu_has_fast_bf16", lambda: True)
    expected = "openvino" if ENGINES["openvino"].import_error() is None else "torch"
    assert auto_engine(torch.device("cpu"))[0] == expected
    monkeypatch.setattr(type(ENGINES["openvino"]), "import_error", lambda self: "openvino is not installed")
    engine, why = auto_engine(torch.device("cpu"))
    assert engine == "torch" and "openvino is not installed" in why


def test_auto_measures_the_installed_engines_once_and_caches_the_winner(
    monkeypatch: pytest.MonkeyPatch, tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """End to end on a CPU without native bf16 (as this one is made to look): the real engines are
    converted, run on one tile and timed; the winner runs the image within a level of PyTorch; a
    second upscaler reads the choice file; ``engine_retune`` measures again."""
    import json

    import spsr.cpu as cpu

    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu, "cpu_has_fast_bf16", lambda: False)
    installed = [e for e in ("openvino", "onnxruntime") if ENGINES[e].import_error() is None]
    notes: list[str] = []
    up = TiledUpscaler(tiny_model, 4, tile=16, overlap=4, precision="fp32", engine="auto", on_note=notes.append)
    measured = [n for n in notes if n.startswith("engine auto: measured one 1×3×16×16 tile — torch ")]
    assert len(measured) == 1, notes
    for name in installed:
        assert f", {name} " in measured[0]
    assert up.engine in ("torch", *installed) and f"→ {up.engine} (cached in " in measured[0]
    (choice_file,) = (tmp_path / "cache" / "engines" / "choice").glob("*.json")
    record = json.loads(choice_file.read_text(encoding="utf-8"))
    assert record["winner"] == up.engine and set(record["seconds"]) == {"torch", *installed}
    assert all(s > 0 for s in record["seconds"].values()) and record["shape"] == [1, 3, 16, 16]
    x = torch.rand(3, 37, 45)
    ref = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32", engine="torch")(x)
    assert _levels(up(x), ref)[0] <= 1 and up.engine == record["winner"]
    notes.clear()
    again = TiledUpscaler(tiny_model, 4, tile=16, overlap=4, precision="fp32", engine="auto", on_note=notes.append)
    assert again.engine == up.engine and not any("measured" in n for n in notes)
    retuned = TiledUpscaler(tiny_model, 4, tile=16, overlap=4, precision="fp32", engine="auto",
                            on_note=notes.append, engine_retune=True)
    assert sum("measured one" in n for n in notes) == 1 and retuned.engine in ("torch", *installed)
    assert len(list(choice_file.parent.glob("*.json"))) == 1  # the same key, rewritten


def test_an_engine_that_cannot_import_gives_one_note_and_torch_runs(
    monkeypatch: pytest.MonkeyPatch, tiny_model: torch.nn.Module
) -> None:
    monkeypatch.setattr(type(ENGINES["onnxruntime"]), "import_error", lambda self: "onnxruntime is not installed")
    engine, notes = choose_engine("onnxruntime", torch.device("cpu"))
    assert engine.name == "torch" and len(notes) == 1 and "onnxruntime is not installed" in notes[0]
    got: list[str] = []
    up = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32", engine="onnxruntime", on_note=got.append)
    assert up.engine == "torch" and len(got) == 1
    x = torch.rand(3, 12, 12)
    ref = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32", engine="torch")(x)
    assert torch.equal(up(x), ref)
    # A converted engine on a GPU device: not run there.
    assert ENGINES["openvino"].unavailable_reason(torch.device("cuda")) is not None or \
        ENGINES["openvino"].import_error() is not None


def test_an_engine_that_fails_on_its_first_run_falls_back(
    monkeypatch: pytest.MonkeyPatch, tiny_model: torch.nn.Module
) -> None:
    from spsr.engines.base import Runner

    class Broken(Runner):
        engine = "onnxruntime"

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("Illegal instruction in a kernel\nmore detail")

    monkeypatch.setattr(type(ENGINES["onnxruntime"]), "import_error", lambda self: None)
    monkeypatch.setattr(type(ENGINES["onnxruntime"]), "prepare", lambda self, spec, on_note=None: Broken())
    got: list[str] = []
    up = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32", engine="onnxruntime", on_note=got.append)
    x = torch.rand(3, 10, 10)
    out = up(x)
    assert up.engine == "torch" and len(got) == 1 and "Illegal instruction" in got[0] and "\n" not in got[0]
    assert torch.equal(out, TiledUpscaler(tiny_model, 4, tile=0, precision="fp32")(x))
    # A conversion that fails: EngineUnavailable from prepare, same fallback.

    def refuse(self: object, spec: RunSpec, on_note: object = None) -> Runner:
        raise EngineUnavailable("onnxruntime could not convert the model (RuntimeError: op)")

    monkeypatch.setattr(type(ENGINES["onnxruntime"]), "prepare", refuse)
    got.clear()
    up = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32", engine="onnxruntime", on_note=got.append)
    assert torch.equal(up(x), out) and len(got) == 1 and "could not convert" in got[0]


@pytest.mark.parametrize("engine", CONVERTED)
def test_fp32_engine_within_one_level_tiled_and_seam_free(engine: str, tiny_model: torch.nn.Module) -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 37, 45)
    ref = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32", engine="torch")(x)
    whole = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32", engine=engine)
    tiled = TiledUpscaler(tiny_model, 4, tile=16, overlap=4, batch=3, precision="fp32", engine=engine)
    assert whole.engine == engine and whole.precision == "fp32"
    w_out, t_out = whole(x), tiled(x)
    assert _levels(w_out, ref)[0] <= 1 and _levels(t_out, ref)[0] <= 1
    # Seam-free as PyTorch's tiling: tiled equals whole within today's tolerance (> 60 dB).
    mse = float(((w_out - t_out) ** 2).mean())
    assert mse == 0 or 10 * np.log10(1 / mse) > 60
    if engine == "openvino":  # f32: the first shape static, then one dynamic compilation for all
        runner = tiled._runners[False]
        assert runner.model.dynamic and list(runner.model.compiled) == [()]  # type: ignore[attr-defined]
        compiled = runner.compilations  # type: ignore[attr-defined]
        assert compiled == 2
        tiled(torch.rand(3, 37, 45))  # a second image compiles nothing
        assert runner.compilations == compiled  # type: ignore[attr-defined]
        single = whole._runners[False]  # one shape: its static compilation only
        assert not single.model.dynamic and list(single.model.compiled) == [(1, 3, 37, 45)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine", CONVERTED)
def test_gradient_branch_through_an_engine(engine: str, tiny_model: torch.nn.Module) -> None:
    x = torch.rand(3, 20, 24)
    sr_ref, grad_ref = TiledUpscaler(tiny_model, 4, tile=0, precision="fp32").with_gradient(x)
    up = TiledUpscaler(tiny_model, 4, tile=16, overlap=4, precision="fp32", engine=engine)
    sr, grad = up.with_gradient(x)
    assert up.engine == engine
    assert _levels(sr, sr_ref)[0] <= 1
    assert float((grad - grad_ref).abs().max()) < 2e-3
    plain = build_model(ArchSpec("rrdb", 4, nf=8, nb=1, gc=4)).eval()
    with pytest.raises(ConfigError, match="no gradient branch"):
        TiledUpscaler(plain, 4, tile=0, precision="fp32", engine=engine).with_gradient(x)


@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_fast_bf16() or ENGINES["openvino"].import_error() is not None,
                    reason="needs a CPU with native bf16 (AVX512-BF16/AMX) and openvino")
def test_openvino_bf16_within_the_band_on_the_builtin_model(astronaut: np.ndarray) -> None:
    from spsr.infer import load_model

    model = load_model("default").model
    lr = torch.from_numpy(astronaut[::4, ::4][:64, :72].copy()).permute(2, 0, 1).float() / 255
    ref = TiledUpscaler(model, 4, tile=0, precision="fp32", engine="torch")(lr)
    up = TiledUpscaler(model, 4, tile=0, precision="bf16", engine="openvino")
    out = up(lr)
    assert up.describe() == "openvino bf16"
    worst, mean = _levels(out, ref)
    assert worst <= 8 and mean <= 0.6, (worst, mean)


@pytest.mark.parametrize("engine", CONVERTED)
def test_conversion_is_cached_and_rebuilt_when_damaged(
    engine: str, tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "own cache"))
    notes: list[str] = []
    spec = RunSpec(tiny_model, False, torch.float32, torch.device("cpu"), cache_key=f"test-{engine}")
    x = torch.rand(1, 3, 12, 12)
    before = get_engine(engine).prepare(spec, notes.append)(x)
    assert len(notes) == 1 and "converted the model" in notes[0]
    # The first-run cost by stage, and what a later run pays instead.
    assert "ONNX export" in notes[0] and "later runs skip this" in notes[0]
    assert ("OpenVINO IR" in notes[0]) == (engine == "openvino")
    (folder,) = [p for p in (tmp_path / "own cache" / "engines" / engine).iterdir() if p.is_dir()]
    files = {"openvino": ["manifest.json", "model.bin", "model.xml"], "onnxruntime": ["manifest.json", "model.onnx"]}
    assert sorted(p.name for p in folder.iterdir()) == files[engine]
    notes.clear()
    get_engine(engine).prepare(spec, notes.append)
    assert notes == []  # warm: nothing converted
    import gc

    gc.collect()  # no runner maps the files any more (OpenVINO memory-maps the weights)
    big = max((p for p in folder.iterdir() if p.name != "manifest.json"), key=lambda p: p.stat().st_size)
    big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])  # a truncated copy
    rebuilt = get_engine(engine).prepare(spec, notes.append)
    assert any("damaged" in n for n in notes) and any("converted" in n for n in notes)
    assert torch.allclose(rebuilt(x), before, atol=1e-6)


def test_cache_builds_once_and_publishes_atomically(_private_cache: Path) -> None:
    calls: list[Path] = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "model.onnx").write_bytes(b"converted")

    first, built = cached_conversion("onnxruntime", "k1", build)
    second, built_again = cached_conversion("onnxruntime", "k1", build)
    assert built and not built_again and first == second and len(calls) == 1
    assert calls[0] != first and not calls[0].exists()  # built elsewhere, renamed into place
    assert (first / "model.onnx").read_bytes() == b"converted"

    def crash(folder: Path) -> None:
        (folder / "model.onnx").write_bytes(b"half")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError):
        cached_conversion("onnxruntime", "k2", crash)
    assert not (_private_cache / "engines" / "onnxruntime" / "k2").exists()
    assert [p.name for p in (_private_cache / "engines" / "onnxruntime").iterdir()
            if p.name.endswith(".tmp")] == []


def test_weights_digest_follows_the_weights(tiny_model: torch.nn.Module) -> None:
    twin = build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4)).eval()
    twin.load_state_dict(tiny_model.state_dict())
    assert weights_digest(twin) == weights_digest(tiny_model)
    with torch.no_grad():
        next(twin.parameters()).view(-1)[0] += 1e-3
    assert weights_digest(twin) != weights_digest(tiny_model)
    from spsr.engines.torch_fast import accelerate

    plain = build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4)).eval()
    plain.load_state_dict(tiny_model.state_dict())
    before = weights_digest(plain)
    assert weights_digest(accelerate(plain)) == before  # the torch engine's subclasses: same model
    # A setting without a tensor of its own changes the forward, and the key.
    skip = build_model(ArchSpec("spsr", 4, nf=8, nb=2, gc=4, extra={"image_skip": True})).eval()
    skip.load_state_dict(tiny_model.state_dict())
    assert weights_digest(skip) != before


def test_cli_engine_option(tmp_path: Path, tiny_spsr_weights: Path) -> None:
    from spsr.data.image_io import read_image, write_image
    from spsr_cli.app import app

    runner = CliRunner()
    rng = np.random.default_rng(0)
    write_image(tmp_path / "in.png", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    result = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), str(tmp_path / "x.png"),
                                 "--weights", str(tiny_spsr_weights), "--engine", "tensorrt"])
    assert result.exit_code != 0 and "unknown engine 'tensorrt'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.png").exists()
    outs = {}
    for engine in ["torch", *(e for e in ("openvino", "onnxruntime") if ENGINES[e].import_error() is None)]:
        dst = tmp_path / f"{engine}.png"
        result = runner.invoke(app, ["upscale", str(tmp_path / "in.png"), str(dst), "--weights",
                                     str(tiny_spsr_weights), "--precision", "fp32", "--engine", engine,
                                     "--tile", "16", "--tile-overlap", "4"])
        assert result.exit_code == 0, result.output
        assert f"{engine} fp32" in result.output
        outs[engine] = read_image(dst).pixels.astype(int)
    for engine, pixels in outs.items():
        assert np.abs(pixels - outs["torch"]).max() <= 1, engine
    for command in ("gradmap", "eval"):
        import typer.main

        params = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
        assert any("--engine" in p.opts for p in params)


@pytest.mark.skipif(ENGINES["onnxruntime"].import_error() is not None, reason="onnxruntime is not installed")
def test_eval_and_gradmap_run_through_an_engine(tmp_path: Path, tiny_spsr_weights: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("SPSR_CACHE", str(tmp_path / "cache"))  # a cold cache: eval converts

    from spsr.data.image_io import write_image
    from spsr_cli.app import app

    runner = CliRunner()
    rng = np.random.default_rng(1)
    write_image(tmp_path / "Tiny" / "HR" / "a.png", rng.integers(0, 256, (32, 36, 3), dtype=np.uint8))
    scores = {}
    for engine in ("torch", "onnxruntime"):
        out = tmp_path / f"{engine}.json"
        result = runner.invoke(app, ["eval", "--weights", str(tiny_spsr_weights), str(tmp_path / "Tiny" / "HR"),
                                     "--precision", "fp32", "--engine", engine, "--json", str(out), "-q"])
        assert result.exit_code == 0, result.output
        if engine != "torch":  # the conversion says so: proof that the engine ran
            assert "converted the model for onnxruntime" in result.output
        scores[engine] = json.loads(out.read_text())["datasets"]["Tiny"]["models"]
    (label,) = scores["torch"]
    assert scores["onnxruntime"][label]["mean"]["psnr"] == pytest.approx(scores["torch"][label]["mean"]["psnr"],
                                                                         abs=0.05)
    result = runner.invoke(app, ["gradmap", str(tmp_path / "Tiny" / "HR" / "a.png"), str(tmp_path / "p.png"),
                                 "--weights", str(tiny_spsr_weights), "--engine", "onnxruntime"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").is_file()
