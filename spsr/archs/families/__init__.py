"""One module per generator family; each defines ``FAMILY`` (see :mod:`spsr.archs.registry`)."""
