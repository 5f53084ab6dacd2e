"""Callers read what an architecture can do from its family (spsr.archs.registry), never its name:
the built-in families declare their capabilities truthfully, and a new family registered the way
CONTRIBUTING.md describes (tests/_tiny_family.py: one module plus one registry line) is built,
saved, detected, loaded, initialised and configured for training without any other change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from spsr.archs import SROutput, registry
from spsr.archs.init import init_generator
from spsr.archs.registry import families, family, init_route
from spsr.archs.spec import ArchSpec, build_model

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_in_families_declare_what_their_networks_do() -> None:
    x = torch.rand(1, 3, 6, 6)
    for name, fam in families().items():
        spec = ArchSpec(name, 2, nf=8, nb=2, gc=4)
        with torch.no_grad():
            out = build_model(spec).eval()(x)
        assert fam.gradient_branch == isinstance(out, SROutput), name
        assert spec.has_gradient_branch == fam.gradient_branch
        assert fam.default_init in ("kaiming", "pytorch")
        if fam.wraps_backbone:
            keys = build_model(spec).state_dict()
            assert any(k.startswith(fam.sr_branch_prefix) for k in keys), name
    assert [n for n, f in families().items() if f.gradient_branch] == ["spsr"]
    assert family("edsr").default_init == "pytorch" and family("rrdb").default_init == "kaiming"


def test_init_route_follows_the_declared_capabilities() -> None:
    spsr_rrdb, spsr_edsr = ArchSpec("spsr", 4, nf=8, nb=2, gc=4), ArchSpec("spsr", 4, nf=8, nb=2, backbone="edsr")
    rrdb, edsr = ArchSpec("rrdb", 4, nf=8, nb=2, gc=4), ArchSpec("edsr", 4, nf=8, nb=2)
    assert init_route(spsr_rrdb, spsr_rrdb) == "same"
    assert init_route(spsr_rrdb, spsr_edsr) is None  # another SR branch
    assert init_route(rrdb, spsr_rrdb) == "sr_branch" and init_route(edsr, spsr_edsr) == "sr_branch"
    assert init_route(edsr, spsr_rrdb) is None
    # an SPSR-G's RRDB SR branch becomes an RRDBNet (RRDBNet declares from_wrapper_branch; the
    # ablations' "w/o GB" rows), but not an EDSR, whose family declares no such thing
    assert init_route(spsr_rrdb, rrdb) == "from_branch"
    assert init_route(spsr_edsr, edsr) is None and init_route(spsr_rrdb, edsr) is None


def test_no_code_outside_archs_compares_architecture_names() -> None:
    names = "|".join(families())
    pattern = re.compile(rf"""(==|!=|\bin)\s*[({{\[]?\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    offenders = []
    for folder in ("spsr", "spsr_cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if (ROOT / "spsr" / "archs") in path.parents:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line) and "layout" not in line and "protocol" not in line:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "read a capability of spsr.archs.registry.Family instead:\n" + "\n".join(offenders)


@pytest.fixture
def tiny_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry with tests/_tiny_family.py added: the one line CONTRIBUTING.md asks for."""
    monkeypatch.setattr(registry, "_FAMILY_MODULES", (*registry._FAMILY_MODULES, "_tiny_family"))
    monkeypatch.setattr(registry, "_REGISTRY", {})


def test_a_new_family_is_one_module_and_one_registry_line(tiny_registered: None, tmp_path: Path) -> None:
    from spsr.checkpoints import inspect_checkpoint, load_model, save_weights
    from spsr.train.config import ModelConfig
    from spsr.train.init_from import load_init

    assert "tiny" in registry.arch_names() and "tiny" not in registry.backbone_names()
    spec = ArchSpec("tiny", 2, nf=4, nb=1)
    assert spec.describe() == "TinyNet x2 (nf 4, nb 1)" and not spec.has_gradient_branch
    model = build_model(spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert init_generator(model, "tiny") is model  # default_init "pytorch": left as built
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.rand(1, 3, 5, 5)
    assert model(x).shape == (1, 3, 10, 10)

    # Written with its spec, and recognised from its keys alone (a foreign .pth).
    save_weights(tmp_path / "tiny.safetensors", model, spec)
    loaded = load_model(tmp_path / "tiny.safetensors")
    assert loaded.spec == spec and torch.allclose(loaded.model(x), model(x))
    torch.save(model.state_dict(), tmp_path / "tiny.pth")
    found = inspect_checkpoint(tmp_path / "tiny.pth")
    assert found.spec.arch == "tiny" and found.spec.scale == 2 and found.layout == "tiny"

    # --init from it, and the training configuration's model section builds it.
    fresh = build_model(spec)
    assert sorted(load_init(fresh, spec, tmp_path / "tiny.pth")) == sorted(before)
    assert torch.allclose(fresh(x), model(x))
    assert ModelConfig(arch="tiny", scale=2, nf=4, nb=1).spec() == ArchSpec("tiny", 2, nf=4, nb=1)
    with pytest.raises(ValueError, match="unsupported scale 3 for TinyNet"):
        ArchSpec("tiny", 3)


def test_the_model_section_and_the_arch_spec_are_one_schema() -> None:
    """Every ArchSpec field but the fixed RGB channels is a model-section field of the same name,
    type and default (None taps is the empty list in TOML), and nothing else is but weight_init."""
    import dataclasses
    import typing

    from spsr.train.config import FIXED_SPEC_KEYS, TRAINING_ONLY_MODEL_KEYS, ModelConfig

    spec_fields = {f.name: f for f in dataclasses.fields(ArchSpec)}
    model_fields = {f.name: f for f in dataclasses.fields(ModelConfig)}
    assert set(model_fields) - TRAINING_ONLY_MODEL_KEYS == set(spec_fields) - FIXED_SPEC_KEYS
    default_spec, default_model = ArchSpec(), ModelConfig()
    assert default_model.spec() == default_spec
    spec_types = typing.get_type_hints(ArchSpec)
    model_types = typing.get_type_hints(ModelConfig)
    for name in set(model_fields) - TRAINING_ONLY_MODEL_KEYS - {"taps"}:
        assert model_types[name] == spec_types[name], name
        assert getattr(default_model, name) == getattr(default_spec, name), name
