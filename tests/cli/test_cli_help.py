"""The top-level CLI stays light, and its static help text stays in step with the library."""

from __future__ import annotations

import subprocess
import sys

from spsr.variant_catalog import CATALOG


def test_train_help_shows_every_variant_of_the_catalog_that_train_trains() -> None:
    from typer.testing import CliRunner

    from spsr_cli.app import app

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "2000"})
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    trained = [v for v in CATALOG if v.command == "train"]
    assert {v.name for v in trained} == {"esrgan", "g", "u", "p", "j", "r", "vgg", "resnet"}
    for v in trained:
        assert f"{v.name}: {' '.join(v.summary.split())}" in shown, v.name
    for v in CATALOG:
        if v.command != "train":
            assert f"{v.name}: {' '.join(v.summary.split())}" not in shown, v.name


def test_importing_the_variant_catalog_imports_no_torch() -> None:
    code = (
        "import sys, spsr.variant_catalog as c; c.catalog(); "
        "print(sorted(m for m in ('torch', 'spsr.train', 'spsr.archs') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_spsr_help_does_not_import_torch() -> None:
    # Shell completion runs `spsr` on every Tab: importing torch there costs seconds.
    code = "import sys, spsr_cli.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _command_paths() -> list[list[str]]:
    import typer.main

    from spsr_cli.app import app

    paths: list[list[str]] = [[]]
    root = typer.main.get_command(app)
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        for sub in getattr(command, "commands", {}):
            paths.append([name, sub])
    return paths


def test_help_has_no_type_placeholders_on_flags_nor_braces_in_usage() -> None:
    from typer.testing import CliRunner

    from spsr_cli.app import app

    runner = CliRunner()
    paths = _command_paths()
    assert len(paths) > 10
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0, (path, result.output)
        usage = next(line for line in result.output.splitlines() if "Usage:" in line)
        assert "{" not in usage and "<bool>" not in result.output, (path, usage)
    upscale = runner.invoke(app, ["upscale", "--help"], env={"COLUMNS": "250"}).output
    assert "INPUTS [OUTPUT]" in upscale
    train = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"}).output
    assert "-V" in train and " -v " not in train  # -v is left for verbosity
