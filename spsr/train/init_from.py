"""Initialising a generator that is about to be trained from another checkpoint (``--init``).

Training-only: inference loads a checkpoint into the architecture it describes
(:func:`spsr.checkpoints.load_model`); ``--init`` fits one into the architecture a training
configuration asks for, adapting it where the families allow.
"""

from __future__ import annotations

import os

from torch import nn

from spsr.archs.registry import family, init_route
from spsr.archs.spec import ArchSpec
from spsr.checkpoints.io import StateDict, inspect_checkpoint, load_strict, resolve_weights
from spsr.errors import CheckpointError

# The convs that see the generator's input: the SR branch's first conv (RRDB, in the ESRGAN
# layout too, EDSR, SRResNet) and the gradient branch's first conv.
DESUBPIXEL_HEAD_KEYS = (
    "model.0.weight", "model.head.0.weight", "model.conv_first.weight", "b_fea_conv.0.weight",
)


def spread_to_desubpixel_head(state: StateDict, own: StateDict, scale: int) -> StateDict:
    """Fit a checkpoint's input convs to a generator with the desubpixel head.

    The head sees the LR image nearest-upsampled and brought back by ``pixel_unshuffle``: input
    channel ``c·s² + k`` is channel ``c`` of the LR image at every sub-pixel position ``k``. A
    conv weight ``W`` (out, C, kh, kw) copied to each of the ``s²`` positions and divided by
    ``s²`` therefore computes exactly ``W * LR`` on such an input: the SR branch starts as the
    checkpoint's. The gradient branch's conv sees M of the upsampled image, which is not M(LR)
    unshuffled, so there the same spreading is only a starting point.

    Args:
        state: the checkpoint's state dict.
        own: the generator's state dict (the target shapes).
        scale: the SR factor ``s``.

    Returns:
        ``state`` with the head weights spread; other keys unchanged.
    """
    out = dict(state)
    area = scale * scale
    for key in DESUBPIXEL_HEAD_KEYS:
        if key not in state or key not in own:
            continue
        src, dst = state[key], own[key]
        if src.dim() == 4 and dst.shape == (src.shape[0], src.shape[1] * area, *src.shape[2:]):
            out[key] = src.repeat_interleave(area, dim=1) / area
    return out


def load_init(
    model: nn.Module, spec: ArchSpec, source: str | os.PathLike[str], warnings: list[str] | None = None
) -> list[str]:
    """Initialise ``model`` from any checkpoint this module reads.

    The same architecture loads strictly; for a family with ``adapt_init`` (EDSR) differences
    in ``extra`` are folded into the weights (an EDSR-PyTorch checkpoint, mean shift and
    ``rgb_range`` 255, initialises spsr's [0, 1] EDSR). A plain backbone checkpoint (any family
    with an SR ``branch_state``: RRDB/EDSR/SRResNet) fills the SR branch of an SPSR generator
    with that backbone (its image conv is not used). For a generator with the desubpixel head
    (the U-Net follow-up) the first convs of a checkpoint without it are spread over the
    ``scale²`` sub-pixel positions (see :func:`spread_to_desubpixel_head`). A generator whose
    family declares ``from_wrapper_branch`` (RRDBNet) takes the SR branch of a generator that
    wraps it (an SPSR-G with an RRDB SR branch: the ablations' "w/o GB" rows, TPAMI 2021 Table 2
    and the U-Net follow-up's Table 2; :func:`spsr.archs.families.rrdb.state_from_spsr_branch`).

    Args:
        model: the freshly built generator.
        spec: its architecture.
        source: weights file, run folder or built-in name.
        warnings: if given, what detection had to guess is appended here (one line each).

    Returns:
        The keys of ``model`` that were set.
    """
    path = resolve_weights(source)
    checked = inspect_checkpoint(path, spec.scale)
    state, src_spec = checked.state, checked.spec
    if warnings is not None:
        warnings.extend(checked.warnings)
    if src_spec.scale != spec.scale:
        raise CheckpointError(f"{path}: init weights are x{src_spec.scale}, the model is x{spec.scale}")
    spread = bool(spec.extra.get("desubpixel_head")) and not src_spec.extra.get("desubpixel_head")
    route = init_route(src_spec, spec)
    if route == "same":
        adapt = family(spec.arch).adapt_init
        if adapt is not None:
            state = adapt(state, src_spec, spec)
        if spread:
            state = spread_to_desubpixel_head(state, model.state_dict(), spec.scale)
        load_strict(model, state, str(path))
        return list(state)
    branch_state = family(src_spec.arch).branch_state
    if route == "sr_branch" and branch_state is not None:
        branch = branch_state(state, src_spec, spec)
        own = model.state_dict()
        if spread:
            branch = spread_to_desubpixel_head(branch, own, spec.scale)
        bad = [k for k in branch if k not in own or own[k].shape != branch[k].shape]
        if bad:
            raise CheckpointError(
                f"{path}: {src_spec.describe()} does not fit the SR branch of {spec.describe()} "
                f"({len(bad)} keys differ, e.g. {bad[0]})"
            )
        prefix = family(spec.arch).sr_branch_prefix
        missing_branch = [k for k in own if k.startswith(prefix) and k not in branch]
        if missing_branch:
            raise CheckpointError(f"{path}: SR-branch keys missing from the init, e.g. {missing_branch[0]}")
        # For RRDB, model.8 *is* HR_conv0_new (one shared module), so both keys are set here.
        model.load_state_dict(branch, strict=False)
        return list(branch)
    from_branch = family(spec.arch).from_wrapper_branch
    if route == "from_branch" and from_branch is not None:
        try:
            plain = from_branch(state, src_spec, spec)
        except ValueError as exc:
            raise CheckpointError(
                f"{path}: cannot initialise {spec.describe()} from the SR branch of "
                f"{src_spec.describe()}: {exc}"
            ) from None
        if spread:
            plain = spread_to_desubpixel_head(plain, model.state_dict(), spec.scale)
        load_strict(model, plain, str(path))
        return list(plain)
    raise CheckpointError(f"{path}: cannot initialise {spec.describe()} from {src_spec.describe()}")
