"""Ablation grids: the TOML spec format, run-folder names, --init/--nse slots, the presets against
the engine's configuration (what each row switches), and the table's best marks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from _train_fixtures import make_store, one_thread  # noqa: F401 (autouse fixture)

from spsr.ablation import (
    AblationGrid,
    AblationInputs,
    AblationTable,
    EvalSpec,
    best_marks,
    eval_datasets,
    get_preset,
    grid_from_dict,
    parse_slots,
    plan_grid,
    preset_names,
    resolve_row,
    run_plan,
    slugify,
)
from spsr.ablation.plan import NSE_KEY, TRAIN, UNAVAILABLE, PlannedRun
from spsr.ablation.runner import FAILED, OK, RowResult, one_line
from spsr.ablation.states import CONFLICT
from spsr.ablation.table import table_csv, table_markdown
from spsr.errors import ConfigError
from spsr.metrics.registry import EvalSettings, MetricSuite
from spsr.metrics.score_folders import DatasetResult
from spsr.train.variants import variants


def test_slugify_makes_distinct_ascii_folder_names() -> None:
    assert slugify("SPSR-G w/o GL") == "spsr-g_wo_gl"
    assert slugify("γ = 1e-2") == "gamma_1e-2"
    assert slugify("β = 1e-8") == "beta_1e-8"
    assert slugify("Ours w/o U-Net") == "ours_wo_u-net"
    assert slugify("ÉDSR (x4)") == "edsr_x4"
    assert slugify("///") == "config"


def test_slots_take_a_plain_path_or_name_equals_path(tmp_path: Path) -> None:
    odd = tmp_path / "a=b"
    odd.mkdir()
    slots = parse_slots(["runs/psnr", f"edsr={tmp_path}"], "--init")
    assert slots == {"default": "runs/psnr", "edsr": str(tmp_path.resolve())}
    assert parse_slots([str(odd)], "--nse") == {"default": str(odd.resolve())}
    with pytest.raises(ConfigError, match=r"--nse cross=\.\.\. is given twice"):
        parse_slots(["cross=a", "cross=b"], "--nse")


def test_spec_format_flattens_sections_and_keeps_table_values() -> None:
    grid = grid_from_dict(
        {
            "title": "T",
            "variant": "esrgan",
            "metrics": "psnr, lpips",
            "set": {"model": {"nf": 8}, "run.seed": 3},
            "config": [
                {"name": "a"},
                {
                    "name": "b",
                    "variant": "g",
                    "set": {"loss": {"gan": 0}, "model.extra": {"res_scale": 0.1}},
                    "backbone": "edsr",
                    "init": "edsr",
                    "dir": "B b",
                },
                {"name": "c", "train": False},
            ],
        },
        "mine",
    )
    assert grid.metrics == ("psnr", "lpips") and grid.title == "T"
    assert grid.overrides == {"model.nf": 8, "run.seed": 3}
    a, b, c = grid.configs
    assert a.variant == "esrgan" and a.folder == "a"
    assert b.overrides == {"loss.gan": 0, "model.extra": {"res_scale": 0.1}}
    assert (b.variant, b.backbone, b.init, b.folder) == ("g", "edsr", "edsr", "b_b")
    assert c.train is False
    assert [x.name for x in grid.select(["c", "a"]).configs] == ["a", "c"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"config": []}, "no \\[\\[config\\]\\]"),
        ({"config": [{"variant": "g"}]}, "has no name"),
        ({"config": [{"name": "a", "sett": {}}]}, "unknown key 'sett'"),
        ({"titel": "x", "config": [{"name": "a"}]}, "unknown key 'titel'"),
        ({"config": [{"name": "a b"}, {"name": "A_B"}]}, "share the run folder"),
        ({"config": [{"name": "a", "set": {"gan": 0}}]}, "must be section.key"),
        ({"config": [{"name": "a", "train": "no"}]}, "train must be true or false"),
    ],
)
def test_bad_specs_say_what_is_wrong(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        grid_from_dict(data, "bad")


def test_every_preset_row_resolves_or_names_what_it_lacks(tmp_path: Path) -> None:
    from spsr.archs import ArchSpec, build_model
    from spsr.checkpoints.io import save_weights

    known = variants()
    slots = {"vertical": "x", "cross": "x", "jigsaw": "x"}  # NSE runs are checked when training
    for name, arch in (("default", "rrdb"), ("edsr", "edsr"), ("srresnet", "srresnet")):
        spec = ArchSpec(arch=arch, nf=8, nb=2, gc=4, scale=4)
        slots[name] = str(save_weights(tmp_path / f"{name}.safetensors", build_model(spec), spec))
    full = AblationInputs(iterations=10, inits=slots, nses=slots)
    for name in preset_names():
        grid = get_preset(name)
        for planned in plan_grid(grid, "/nonexistent/out", full):
            if planned.config.variant in known:
                # With every input given, a row of a variant the engine has must resolve: a typo in
                # a preset's keys would show up here.
                assert planned.action == TRAIN or not planned.config.train, (name, planned.problem)
            else:
                assert planned.action == UNAVAILABLE
                assert f"variant {planned.config.variant} is not available" in planned.problem
        for planned in plan_grid(grid, "/nonexistent/out", AblationInputs(iterations=10)):
            needs = planned.config.nse is not None or planned.config.init != "default"
            if needs and planned.config.variant in known:
                assert planned.action == UNAVAILABLE and "needs --" in planned.problem


def test_spsr_g_components_switch_what_table_2_says() -> None:
    grid = get_preset("g-components")
    cfgs = {c.name: resolve_row(c, grid, AblationInputs(iterations=100)) for c in grid.configs}
    full = cfgs["SPSR-G"]
    assert (
        full.model.arch,
        full.loss.branch,
        full.loss.gradient_pixel,
        full.loss.gradient_gan,
    ) == ("spsr", 0.5, 0.01, 0.005)
    no_gb = cfgs["SPSR-G w/o GB"]  # ESRGAN's generator trained with the full loss
    assert (no_gb.stage, no_gb.model.arch, no_gb.model.nb, no_gb.loss.branch) == (
        "gan",
        "rrdb",
        23,
        0.0,
    )
    assert (no_gb.loss.gradient_pixel, no_gb.loss.gradient_gan) == (0.01, 0.005)
    assert (cfgs["SPSR-G w/o GL"].loss.gradient_pixel, cfgs["SPSR-G w/o GL"].loss.gradient_gan) == (
        0,
        0,
    )
    assert (
        cfgs["SPSR-G w/o AGL"].loss.gradient_pixel,
        cfgs["SPSR-G w/o AGL"].loss.gradient_gan,
    ) == (0.01, 0)
    assert (
        cfgs["SPSR-G w/o PGL"].loss.gradient_pixel,
        cfgs["SPSR-G w/o PGL"].loss.gradient_gan,
    ) == (0, 0.005)
    esrgan = cfgs["ESRGAN"]
    assert (esrgan.variant, esrgan.model.arch, esrgan.loss.gradient_gan) == ("esrgan", "rrdb", 0)
    assert all(c.run.iterations == 100 for c in cfgs.values())


def _tiny_rrdb_weights(path: Path) -> str:
    from spsr.archs import ArchSpec, build_model
    from spsr.checkpoints.io import save_weights

    spec = ArchSpec(arch="rrdb", nf=8, nb=2, gc=4, scale=4)
    return str(save_weights(path, build_model(spec), spec))


def test_rows_take_the_init_size_and_keep_their_kind_of_generator(tmp_path: Path) -> None:
    init = _tiny_rrdb_weights(tmp_path / "psnr.safetensors")
    grid = get_preset("g-components")
    cfgs = {c.name: resolve_row(c, grid, AblationInputs(iterations=3, inits={"default": init}))
            for c in grid.configs}
    for name, cfg in cfgs.items():
        assert (cfg.model.nf, cfg.model.nb, cfg.model.gc, cfg.model.scale) == (8, 2, 4, 4), name
        assert cfg.run.init == init
    assert cfgs["ESRGAN"].model.arch == "rrdb" and cfgs["SPSR-G w/o GB"].model.arch == "rrdb"
    assert {cfgs[n].model.arch for n in ("SPSR-G", "SPSR-G w/o GL", "SPSR-G w/o AGL")} == {"spsr"}
    assert cfgs["SPSR-G"].model.backbone == "rrdb"


def test_an_explicit_size_that_contradicts_the_init_is_one_error(tmp_path: Path) -> None:
    init = _tiny_rrdb_weights(tmp_path / "psnr.safetensors")
    grid = get_preset("g-components")
    inputs = AblationInputs(iterations=3, inits={"default": init}, overrides={"model.nf": 16})
    with pytest.raises(ConfigError, match="conflicts with the --init checkpoint"):
        resolve_row(grid.configs[-1], grid, inputs)


def test_rows_override_common_settings_and_slots_fill_init_and_nse(tmp_path: Path) -> None:
    other = _tiny_rrdb_weights(tmp_path / "w.safetensors")
    grid = grid_from_dict(
        {
            "set": {"loss.gan": 0.5},
            "config": [{"name": "a", "set": {"loss.gan": 0.25}, "init": "other", "nse": "cross"}],
        },
        "g",
    )
    inputs = AblationInputs(
        data="d.h5",
        iterations=5,
        inits={"other": other},
        nses={"cross": "/nse_c"},
        overrides={"loss.gan": 0.75, "run.seed": 9},
    )
    try:
        cfg = resolve_row(grid.configs[0], grid, inputs)
    except ConfigError as exc:  # the engine has no structure-extractor key yet
        assert NSE_KEY.split(".")[0] in str(exc)
        grid = grid_from_dict(
            {
                "set": {"loss.gan": 0.5},
                "config": [{"name": "a", "set": {"loss.gan": 0.25}, "init": "other"}],
            },
            "g",
        )
        cfg = resolve_row(grid.configs[0], grid, inputs)
    else:
        section, key = NSE_KEY.split(".")
        assert getattr(cfg.section(section), key) == "/nse_c"
    assert cfg.loss.gan == 0.25 and cfg.run.seed == 9
    assert (cfg.data.path, cfg.run.iterations, cfg.run.init) == ("d.h5", 5, other)


def _row(name: str, status: str, psnr: float | None = None, niqe: float | None = None) -> RowResult:
    config = grid_from_dict({"config": [{"name": name}]}, "t").configs[0]
    planned = PlannedRun(config, Path("runs") / config.folder, TRAIN)
    results = (
        []
        if psnr is None
        else [DatasetResult("Set5", name, [("img", {"psnr": psnr, "niqe": niqe})])]
    )
    return RowResult(planned, status, "" if status == OK else "boom", results)


def test_best_and_second_best_follow_each_metric_direction_and_skip_failed_rows() -> None:
    rows = [
        _row("a", OK, 30.0, 5.0),
        _row("b", OK, 31.0, 4.0),
        _row("c", OK, 31.0, 6.0),
        _row("d", FAILED),
        _row("e", OK, 29.0, float("nan")),
    ]
    table = AblationTable("T", "t", "", ["Set5"], ["psnr", "niqe"], rows)
    best, second = best_marks(table)
    assert best == {"Set5": {"psnr": ["b", "c"], "niqe": ["b"]}}
    assert second == {"Set5": {"psnr": ["a"], "niqe": ["a"]}}
    md = table_markdown(table)
    assert "| b | **31.000** | **4.0000** |" in md
    assert "| a | _30.000_ | _5.0000_ |" in md
    assert "| e | 29.000 | – |" not in md and "| e | 29.000 | nan |" in md
    assert "| d (failed) | – | – |" in md and "- **d**: failed: boom" in md
    assert "Set5 NIQE ↓" in md
    csv_text = table_csv(table)
    assert "b,g,ok,,31.0,4.0,Set5/psnr Set5/niqe,,," in csv_text


def test_two_rows_have_no_second_best() -> None:
    table = AblationTable(
        "T", "t", "", ["Set5"], ["psnr"], [_row("a", OK, 1.0, 1.0), _row("b", OK, 2.0, 1.0)]
    )
    assert best_marks(table) == ({"Set5": {"psnr": ["b"]}}, {})


def test_one_line_reasons() -> None:
    assert one_line(ConfigError("bad value\nmore")) == "bad value"
    assert (
        one_line(RuntimeError("CUDA out of memory. Tried"))
        == "RuntimeError: CUDA out of memory. Tried"
    )
    assert one_line(KeyError()) == "KeyError"


# A tiny size for every network the presets build, and random backbones instead of ImageNet ones.
TINY = {
    "model.nf": 4,
    "model.nb": 1,
    "model.gc": 4,
    "d.nf": 4,
    "d.hidden": 4,
    "run.amp": "off",
    "run.device": "cpu",
    "data.batch_size": 2,
    "data.workers": 0,
    "loss.perceptual_layer": "conv1_2",
    "data.lr_patch": 8,
}
RANDOM_NETS = {"vgg": "vgg_random", "lpips": "lpips_random"}


def _offline(grid: AblationGrid) -> AblationGrid:
    """The grid with every ImageNet backbone replaced by a randomly initialised one."""
    configs = []
    for c in grid.configs:
        overrides = dict(c.overrides)
        net = overrides.get("loss.perceptual_net")
        if net is not None:
            overrides["loss.perceptual_net"] = RANDOM_NETS[net]
        configs.append(dataclasses.replace(c, overrides=overrides))
    return dataclasses.replace(grid, configs=tuple(configs))


# Per preset: the perceptual network of the rows that keep their variant's, and other settings.
PRESET_SETTINGS = {
    "g-components": {"loss.perceptual_net": "vgg_random"},
    "u-components": {"loss.perceptual_net": "lpips_random", "unet.nf": 2},
    "p-components": {"loss.perceptual_net": "vgg_random"},
}


def _random_nse_run(folder: Path, task: str) -> Path:
    """A pretrain-nse run folder holding a randomly initialised NSE that says it was trained by
    ``task`` (what the structure variants check)."""
    from spsr.losses.structure import random_nse
    from spsr.nse.files import NSE_FILE, save_nse

    folder.mkdir(parents=True)
    save_nse(folder / NSE_FILE, random_nse(), {"task": task})
    return folder


@pytest.mark.parametrize("preset", list(PRESET_SETTINGS))
def test_preset_rows_train_in_the_engine_with_random_backbones(
    preset: str, tmp_path_factory
) -> None:
    """Every row of the runnable presets trains (one iteration, tiny networks, random VGG/LPIPS
    backbones and NSE) and is scored, so the presets' switches are ones the engine accepts."""
    from skimage import data as skdata

    from spsr.data.image_io import write_image

    grid = _offline(get_preset(preset))
    if any(c.variant not in variants() for c in grid.configs):
        pytest.skip(
            "the engine lacks "
            + ", ".join(c.variant for c in grid.configs if c.variant not in variants())
        )
    root = tmp_path_factory.mktemp("presets")
    store = make_store(root / "data", n_images=1, size=64, val=0)
    hr = root / "hr"
    hr.mkdir()
    write_image(hr / "a.png", skdata.astronaut()[:32, :32])
    nses = {"default": str(_random_nse_run(root / "nse", "contrastive"))}
    base = {**TINY, **PRESET_SETTINGS[preset]}
    inputs = AblationInputs(data=str(store), iterations=1, nses=nses, overrides=base)
    plan = plan_grid(grid, root / "out", inputs)
    assert [p.action for p in plan] == [TRAIN] * len(plan)
    spec = EvalSpec(eval_datasets([hr]), EvalSettings.for_protocol(("psnr",), 4), 4, 0, "fp32")
    rows = run_plan(plan, spec, MetricSuite(spec.settings))
    assert [(r.name, r.status, r.reason) for r in rows] == [(c.name, OK, "") for c in grid.configs]


def test_reading_presets_and_the_command_module_does_not_import_torch() -> None:
    """`spsr --help` and shell completion load every command module: ablate's must stay light. Its
    --metrics help reads the metric registry, whose declarations import no metric implementation."""
    import subprocess
    import sys

    heavy = ("torch", "scipy", "spsr.train", "spsr.metrics.psnr_ssim", "spsr.metrics.niqe",
             "spsr.metrics.nrqm", "spsr.metrics.lpips_metric")
    code = (
        "import sys, spsr_cli.cmd_ablate, spsr.ablation; spsr.ablation.get_preset('g-components'); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_table_7_rows_train_the_plain_backbones_and_the_gb_grid_keeps_the_branch(tmp_path: Path) -> None:
    # TPAMI 2021 App. D: EDSR-G / EDSR-P are the pretrained plain EDSR trained with the gradient /
    # structure losses; the gradient-branch versions are a grid of their own.
    from spsr.archs import ArchSpec, build_model
    from spsr.checkpoints.io import save_weights

    slots = {}
    for arch in ("rrdb", "edsr", "srresnet"):  # tiny files of the papers' depths (the rows take their sizes)
        spec = ArchSpec(arch=arch, nf=8, nb=23 if arch == "rrdb" else 16, gc=4, scale=4)
        slots[arch] = str(save_weights(tmp_path / f"{arch}_run.safetensors", build_model(spec), spec))
    slots["default"] = slots.pop("rrdb")
    inputs = AblationInputs(iterations=10, inits=slots, nses=slots)
    plan = {p.config.name: p for p in plan_grid(get_preset("backbones"), "/nonexistent", inputs)}
    for label, arch in (("EDSR", "edsr"), ("SRResNet", "srresnet")):
        g, p = plan[f"{label}-G"].train_config, plan[f"{label}-P"].train_config
        gan = plan[f"{label}-GAN"].train_config
        for cfg in (g, p, gan):
            assert cfg is not None and (cfg.model.arch, cfg.model.nb) == (arch, 16)
            assert cfg.loss.branch == 0 and cfg.run.init == slots[arch]
        assert g.loss.gradient_pixel > 0 and g.loss.gradient_gan > 0 and g.loss.gan > 0
        assert p.section("structure").beta > 0 and p.loss.gradient_pixel == p.loss.gan == 0
        assert gan.loss.gradient_pixel == gan.loss.gradient_gan == 0
    gb = {p.config.name: p.train_config for p in plan_grid(get_preset("backbones-gb"), "/x", inputs)}
    cfg = gb["EDSR-G+GB"]
    assert cfg is not None and (cfg.model.arch, cfg.model.backbone) == ("spsr", "edsr")
    assert cfg.loss.branch > 0


def test_a_row_folder_with_a_checkpoint_but_no_config_is_a_conflict_up_front(tmp_path: Path) -> None:
    init = _tiny_rrdb_weights(tmp_path / "psnr.safetensors")
    grid = get_preset("g-components")
    inputs = AblationInputs(iterations=3, inits={"default": init})
    out = tmp_path / "study"
    first = plan_grid(grid, str(out), inputs)[0]
    (first.run_dir / "state").mkdir(parents=True)
    (first.run_dir / "state" / "last.pt").write_bytes(b"x")
    planned = plan_grid(grid, str(out), inputs)
    assert planned[0].action == CONFLICT and "no config.toml" in planned[0].problem
    assert all(p.action == TRAIN for p in planned[1:])
