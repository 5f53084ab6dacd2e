"""Inference without PyTorch: a model already converted for OpenVINO or ONNX Runtime, run on
NumPy arrays (the *warm start* of ``spsr upscale``).

``import torch`` alone costs 1.5–3 s of every process; a run whose model was converted and
cached by an earlier run does not need it. This package never imports torch (an import-linter
contract in ``pyproject.toml`` checks it):

* :mod:`spsr.lite.tiles` — the tile plan and the blending windows, shared with the PyTorch
  upscaler (:class:`spsr.infer.TiledUpscaler`), so both blend tiles with the same arithmetic;
* :mod:`spsr.lite.runners` — OpenVINO and ONNX Runtime on NumPy batches (the engines in
  :mod:`spsr.engines` wrap these for tensors);
* :mod:`spsr.lite.image` — one decoded image upscaled: colour, grayscale, alpha, bit depth,
  ``outscale``, and the memory check before it;
* :mod:`spsr.lite.warm` — the warm-start index: what a full run recorded about its converted
  model, and the checks that decide whether a later run may use it without loading PyTorch.
"""
