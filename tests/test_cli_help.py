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
