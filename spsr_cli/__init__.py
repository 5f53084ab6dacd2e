"""The ``spsr`` command: a thin Typer layer over the ``spsr`` library."""
