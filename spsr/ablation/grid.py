"""An ablation grid: named training configurations, each a variant preset plus overrides.

A grid is what ``spsr ablate`` trains and tabulates. The built-in grids (the papers' studies) are in
:mod:`spsr.ablation.presets`; any other grid comes from a TOML file (:func:`load_grid`)::

    title = "Gradient loss weights"
    metrics = ["lpips", "psnr", "ssim"]   # default columns (optional)
    variant = "g"                         # default variant of every configuration (optional)

    [set]                                 # overrides of every configuration (optional)
    "loss.gradient_form" = "official"

    [[config]]
    name = "SPSR-G"

    [[config]]
    name = "beta_GM = 0.1"
    set = { "loss.gradient_pixel" = 0.1 }

A configuration's keys: ``name`` (required, unique), ``variant``, ``arch`` (the generator),
``backbone`` (the SR branch of SPSR, or the plain generator), ``set`` (dotted configuration keys,
or nested tables ``[config.set.loss]``), ``init`` / ``nse`` (which ``--init NAME=PATH`` /
``--nse NAME=PATH`` it starts from; default ``default``), ``train = false`` (evaluate the init
weights as they are, a reference row), ``dir`` (the run folder's name) and ``note``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spsr.errors import ConfigError
from spsr.toml_io import read_toml

DEFAULT_SLOT = "default"
_SLOT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "λ": "lambda", "τ": "tau", "σ": "sigma"}


@dataclass(frozen=True)
class AblationConfig:
    """One row of an ablation table.

    Attributes:
        name: the row label (``SPSR-G w/o GL``).
        variant: the engine's variant preset it starts from (``g``, ``p``, ``esrgan``...).
        overrides: dotted configuration keys set on top of the preset (``loss.gradient_gan``: 0).
        arch: the generator (``spsr`` or a plain ``rrdb|edsr|srresnet``), None: the preset's.
        backbone: ``rrdb|edsr|srresnet``: the SR branch of SPSR or the plain generator.
        init: which ``--init`` it starts from (``default``: the plain ``--init PATH``).
        nse: which ``--nse`` structure extractor it needs, None: none.
        train: False evaluates the init weights as they are (e.g. the PSNR-oriented EDSR row).
        dir: the run folder's name under ``OUT/runs`` (default: made from ``name``).
        note: one line saying what the row ablates.
    """

    name: str
    variant: str = "g"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    arch: str | None = None
    backbone: str | None = None
    init: str = DEFAULT_SLOT
    nse: str | None = None
    train: bool = True
    dir: str = ""
    note: str = ""

    @property
    def folder(self) -> str:
        """The run folder's name."""
        return self.dir or slugify(self.name)


@dataclass(frozen=True)
class AblationGrid:
    """A list of configurations trained alike and compared in one table.

    Attributes:
        name: the preset name or the spec file's stem.
        title: the table's caption.
        configs: the rows, in table order.
        metrics: default metric columns, in order (``--metrics`` replaces them).
        source: where the study comes from (``TPAMI 2021, Table 2``).
        overrides: dotted keys set on every configuration (before each one's own).
    """

    name: str
    title: str
    configs: tuple[AblationConfig, ...]
    metrics: tuple[str, ...] = ("lpips", "psnr", "ssim")
    source: str = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.configs:
            raise ConfigError(f"ablation grid {self.name!r} has no configuration")
        seen: dict[str, str] = {}
        for c in self.configs:
            if not c.name.strip():
                raise ConfigError(f"ablation grid {self.name!r}: a configuration has an empty name")
            if c.folder in seen:
                raise ConfigError(
                    f"ablation grid {self.name!r}: configurations {seen[c.folder]!r} and "
                    f"{c.name!r} "
                    f"would share the run folder {c.folder!r}; give one a different name or dir"
                )
            seen[c.folder] = c.name

    def select(self, names: list[str]) -> AblationGrid:
        """The grid restricted to the configurations named (by name or folder), in grid order.

        Raises:
            ConfigError: a name that is not in the grid.
        """
        if not names:
            return self
        known = {c.name for c in self.configs} | {c.folder for c in self.configs}
        unknown = [n for n in names if n not in known]
        if unknown:
            listed = ", ".join(repr(c.name) for c in self.configs)
            raise ConfigError(f"no configuration {unknown[0]!r} in grid {self.name!r} ({listed})")
        wanted = set(names)
        kept = tuple(c for c in self.configs if c.name in wanted or c.folder in wanted)
        return AblationGrid(self.name, self.title, kept, self.metrics, self.source, self.overrides)


def slugify(name: str) -> str:
    """A folder name from a row label: ``SPSR-G w/o GL`` → ``spsr-g_wo_gl``, ``γ = 1e-2`` →
    ``gamma_1e-2``."""
    text = "".join(_GREEK.get(ch, ch) for ch in name.replace("w/o", "wo"))
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9.+-]+", "_", text).strip("_.")
    return text or "config"


def flatten_overrides(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``{"loss": {"gan": 0}, "optim.lr_g": 1e-4}`` → ``{"loss.gan": 0, "optim.lr_g": 1e-4}``.

    Only two levels are flattened (section.key), so dict-valued keys such as ``model.extra`` keep
    their table.

    Raises:
        ConfigError: a top-level key that is neither ``section.key`` nor a table of keys.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if "." in key or key in ("stage", "variant"):
            out[key] = value
        elif isinstance(value, Mapping):
            for sub, subvalue in value.items():
                out[f"{key}.{sub}"] = subvalue
        else:
            raise ConfigError(f"{where}: {key!r} must be section.key (e.g. loss.pixel) or a table")
    return out


def parse_slots(items: list[str] | None, option: str) -> dict[str, str]:
    """``--init PATH`` / ``--init NAME=PATH`` (repeatable) → ``{name: path}``.

    A value is ``NAME=PATH`` only when it is not itself an existing path and NAME is a plain word;
    paths are made absolute.

    Raises:
        ConfigError: the same name given twice.
    """
    slots: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or os.path.exists(item) or not _SLOT.match(name):
            name, value = DEFAULT_SLOT, item
        if name in slots:
            which = option if name == DEFAULT_SLOT else f"{option} {name}=..."
            raise ConfigError(f"{which} is given twice")
        path = Path(value).expanduser()
        slots[name] = str(path.resolve()) if path.exists() else value
    return slots


_CONFIG_KEYS = {"name", "variant", "arch", "backbone", "set", "init", "nse", "train", "dir", "note"}
_GRID_KEYS = {"title", "metrics", "variant", "set", "source", "config"}


def grid_from_dict(data: Mapping[str, Any], name: str, where: str = "spec") -> AblationGrid:
    """Build a grid from a TOML document's content (see the module docstring for the format).

    Raises:
        ConfigError: unknown keys, wrong types, no configuration, duplicate names.
    """
    unknown = sorted(set(data) - _GRID_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_GRID_KEYS))})"
        )
    entries = data.get("config")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: no [[config]] table (one per configuration)")
    default_variant = _text(data.get("variant", "g"), f"{where}: variant")
    configs = []
    for i, entry in enumerate(entries, 1):
        here = f"{where}: [[config]] #{i}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{here} must be a table")
        bad = sorted(set(entry) - _CONFIG_KEYS)
        if bad:
            raise ConfigError(
                f"{here}: unknown key {bad[0]!r} (known: {', '.join(sorted(_CONFIG_KEYS))})"
            )
        if "name" not in entry:
            raise ConfigError(f"{here} has no name")
        overrides = entry.get("set", {})
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"{here}: set must be a table of section.key = value")
        train = entry.get("train", True)
        if not isinstance(train, bool):
            raise ConfigError(f"{here}: train must be true or false")
        configs.append(
            AblationConfig(
                name=_text(entry["name"], f"{here}: name"),
                variant=_text(entry.get("variant", default_variant), f"{here}: variant"),
                overrides=flatten_overrides(overrides, here),
                arch=_optional_text(entry.get("arch"), f"{here}: arch"),
                backbone=_optional_text(entry.get("backbone"), f"{here}: backbone"),
                init=_text(entry.get("init", DEFAULT_SLOT), f"{here}: init"),
                nse=_optional_text(entry.get("nse"), f"{here}: nse"),
                train=train,
                dir=slugify(_text(entry.get("dir", ""), f"{here}: dir"))
                if entry.get("dir")
                else "",
                note=_text(entry.get("note", ""), f"{here}: note"),
            )
        )
    metrics = data.get("metrics", ["lpips", "psnr", "ssim"])
    if isinstance(metrics, str):
        metrics = [m for m in metrics.replace(" ", "").split(",") if m]
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{where}: metrics must be a list of metric names")
    common = data.get("set", {})
    if not isinstance(common, Mapping):
        raise ConfigError(f"{where}: set must be a table of section.key = value")
    return AblationGrid(
        name=name,
        title=_text(data.get("title", name), f"{where}: title"),
        configs=tuple(configs),
        metrics=tuple(m.lower() for m in metrics),
        source=_text(data.get("source", ""), f"{where}: source"),
        overrides=flatten_overrides(common, f"{where}: [set]"),
    )


def load_grid(path: str | os.PathLike[str]) -> AblationGrid:
    """Read a TOML grid spec.

    Raises:
        ConfigError: the file is missing, not TOML, or not a valid grid.
    """
    path = Path(path)
    data = read_toml(path, "ablation spec")
    return grid_from_dict(data, path.stem, str(path))


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value


def _optional_text(value: Any, where: str) -> str | None:
    return None if value is None else _text(value, where)
