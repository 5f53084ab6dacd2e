"""Training stages built on :mod:`spsr.train.engine`: ``psnr`` (L1 pre-training) and ``gan``
(ESRGAN / SPSR-G and the variants built on it)."""
