"""MATLAB's rounding: halves away from zero.

MATLAB's ``round`` and its conversions to integer classes (``uint8(x)``, ``imresize`` and
``imlincomb`` on ``uint8`` images) round halves away from zero: ``round(2.5) = 3``,
``round(-2.5) = -3``. ``np.round`` and ``torch.round`` round halves to even (``2.5 → 2``), so code that
claims MATLAB equality rounds with :func:`round_half_away` instead.
"""

from __future__ import annotations

import numpy as np


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """Round to the nearest integer, halves away from zero, exactly as MATLAB's ``round``.

    Exact for every float: ``x - trunc(x)`` has no rounding error, so values just below a half
    (``0.49999999999999994``) are not pushed over it, as ``floor(x + 0.5)`` would.

    Args:
        x: array or scalar (integers are returned unchanged).

    Returns:
        float64 array (0-d for a scalar) of integral values.
    """
    arr = np.asarray(x, dtype=np.float64)
    whole = np.trunc(arr)
    frac = arr - whole
    return whole + np.where(np.abs(frac) >= 0.5, np.sign(arr), 0.0)
