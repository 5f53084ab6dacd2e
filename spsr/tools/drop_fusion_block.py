"""Convert an SPSR-G generator to the cheap fusion (``fusion_block=False``) as a starting point.

The fusion's RRDB at HR resolution is a residual block, ``f(x) = x + 0.2·r(x)``; with small
residual weights it is close to ``1.2·x`` (its three inner residual blocks each pass ``x`` on
unchanged, the outer one adds 0.2 of that). Dropping it and scaling ``f_concat``'s weights by
1.2 is therefore the closest network without it; a short fine-tuning (``pretrain-psnr --init``)
then recovers what the block added. ``spsr/tools/train_default_models.sh`` builds the fast
built-in models this way.

    python -m spsr.tools.drop_fusion_block work/psnr_full -o work/psnr_cheap_init.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

import torch

from spsr.errors import SpsrError

#: What the RRDB passes on unchanged when its residual branches contribute nothing.
RRDB_IDENTITY_GAIN = 1.2


def drop_fusion_block(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict without ``f_block.*``, ``f_concat``'s weight scaled by :data:`RRDB_IDENTITY_GAIN`."""
    if "f_block.RDB1.conv1.0.weight" not in state:
        raise SpsrError("this generator has no fusion RRDB (f_block) to drop")
    out = {k: v for k, v in state.items() if not k.startswith("f_block.")}
    out["f_concat.0.weight"] = state["f_concat.0.weight"] * RRDB_IDENTITY_GAIN
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="weights file or run folder of an SPSR-G generator")
    ap.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    args = ap.parse_args(argv)
    from spsr.checkpoints.io import load_model, save_weights

    try:
        loaded = load_model(args.source)
        if not loaded.spec.has_gradient_branch:
            raise SpsrError(f"{args.source} is {loaded.spec.describe()}, not an SPSR-G generator")
        spec = dataclasses.replace(loaded.spec, extra={**loaded.spec.extra, "fusion_block": False})
        from spsr.archs import build_model

        model = build_model(spec)
        model.load_state_dict(drop_fusion_block(loaded.model.state_dict()), strict=True)
        save_weights(args.output, model, spec, {"converted_from": str(args.source),
                                                "conversion": "fusion RRDB dropped, f_concat x1.2"})
    except (SpsrError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({spec.describe()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
