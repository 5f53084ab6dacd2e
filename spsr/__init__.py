"""spsr: structure-preserving super-resolution (SPSR-G, SPSR-P, SPSR-J and friends).

The library never prints or exits; the ``spsr`` command (package ``spsr_cli``) does.
"""

__version__ = "0.1.0"
