"""The torch-free variant catalog agrees with what the presets and stages build."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spsr.errors import ConfigError
from spsr.train.config import TrainConfig
from spsr.train.variants import Variant, get_stage, get_variant, preset, register_variant, variants
from spsr.variant_catalog import CATALOG, STAGE_MODULES, catalog


def test_every_catalog_variant_is_a_preset_of_its_stage_with_its_generator_input() -> None:
    assert len({v.name for v in CATALOG}) == len(CATALOG)
    for v in CATALOG:
        cfg = preset(v.name)
        assert (cfg.stage, cfg.variant) == (v.stage, v.name)
        assert v.stage in STAGE_MODULES and callable(get_stage(v.stage))
    # What the generator takes is its architecture's capability (ArchSpec.takes_upsampled_lr):
    # of the presets only the U-Net follow-up's desubpixel head takes the LR image upsampled.
    assert [v.name for v in CATALOG if preset(v.name).model.spec().takes_upsampled_lr] == ["u"]
    assert {v.name for v in CATALOG if v.command == "pretrain-nse"} == {"contrastive", "jigsaw"}


def test_the_registry_is_the_catalog_plus_registered_variants() -> None:
    assert list(catalog()) == [v.name for v in CATALOG]
    assert set(catalog()) <= set(variants())
    register_variant(Variant("catalog_probe", "psnr", "test variant", lambda cfg: None))
    assert get_variant("catalog_probe").stage == "psnr"
    assert "catalog_probe" not in catalog()
    with pytest.raises(ConfigError, match="unknown variant"):
        get_variant("nope")
    with pytest.raises(ConfigError, match="unknown training stage"):
        get_stage("nope")


def test_a_stage_section_is_found_without_importing_every_stage() -> None:
    # In a fresh interpreter: a run's [nse] section imports the NSE stage's module only.
    code = (
        "import sys; from spsr.train.config import TrainConfig; TrainConfig().section('nse'); "
        "print(sorted(m for m in sys.modules if m.startswith('spsr.train.stages.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['spsr.train.stages.nse']"
    with pytest.raises(ConfigError, match="did you mean 'unet'"):
        TrainConfig().section("unt")
