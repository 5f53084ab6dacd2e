"""The top-level CLI stays light, and its static help text stays in step with the library."""

from __future__ import annotations

import json
import subprocess
import sys

from spsr_cli.cmd_train import VARIANT_SUMMARIES


def test_train_help_lists_exactly_the_registered_training_variants() -> None:
    # In a fresh interpreter: other tests register throwaway variants in this one.
    code = (
        "import json; from spsr.train.variants import variants; print(json.dumps({v.name: v.summary "
        "for v in variants().values() if v.stage not in ('psnr', 'nse')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert VARIANT_SUMMARIES == json.loads(out.stdout)


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
