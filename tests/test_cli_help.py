"""The top-level CLI stays light, and its static help text stays in step with the library."""

from __future__ import annotations

import subprocess
import sys

from spsr_cli.cmd_train import VARIANT_SUMMARIES


def test_train_help_lists_exactly_the_registered_training_variants() -> None:
    from spsr.train.variants import variants

    registered = {v.name: v.summary for v in variants().values() if v.stage not in ("psnr", "nse")}
    assert VARIANT_SUMMARIES == registered


def test_spsr_help_does_not_import_torch() -> None:
    # Shell completion runs `spsr` on every Tab: importing torch there costs seconds.
    code = "import sys, spsr_cli.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
