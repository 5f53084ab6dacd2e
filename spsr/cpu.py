"""What the CPU can do, as the precision and engine choices need it: native bf16 (AVX512-BF16 /
AMX) and whether oneDNN runs AVX2-class kernels, read from ``/proc/cpuinfo`` and the
``ONEDNN_MAX_CPU_ISA`` cap. Torch-free, so the engine choice and the inference and training
precision rules can all ask without importing one another.
"""

from __future__ import annotations

import os

#: ``ONEDNN_MAX_CPU_ISA`` values (and their prefixes) under which oneDNN still has native bf16.
_BF16_ISAS = ("ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_FP16", "AVX10")


def _isa_allows_bf16() -> bool:
    """False when ``ONEDNN_MAX_CPU_ISA`` caps oneDNN below native bf16 (e.g. ``AVX2``, ``AVX512_CORE``)."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return not limit or limit.startswith(_BF16_ISAS)


def _cpu_flags() -> str:
    """``/proc/cpuinfo``, or "" where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_flags_have_bf16() -> bool:
    """The CPU lists AVX512-BF16 or AMX-BF16 (whatever ``ONEDNN_MAX_CPU_ISA`` says)."""
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


#: ``ONEDNN_MAX_CPU_ISA`` values that keep oneDNN to AVX2 or below.
_AVX2_CLASS_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")


def cpu_is_avx2_class() -> bool:
    """True where oneDNN runs AVX2 (or older) kernels: no AVX-512 on the CPU, or capped by
    ``ONEDNN_MAX_CPU_ISA``. False where ``/proc/cpuinfo`` cannot be read."""
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in _AVX2_CLASS_ISAS:
        return True
    flags = _cpu_flags()
    return bool(flags) and "avx512f" not in flags


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 instructions (AVX512-BF16 / AMX), so autocast pays off,
    and ``ONEDNN_MAX_CPU_ISA`` does not keep oneDNN from using them."""
    return cpu_flags_have_bf16() and _isa_allows_bf16()


#: The ISA flags that decide which kernels oneDNN, OpenVINO and ONNX Runtime pick, and so which
#: engine is fastest (part of ``--engine auto``'s measured-choice key).
KERNEL_FLAGS = ("avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")

#: Environment variables that cap or change the CPU kernels the libraries pick.
KERNEL_ENV = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def _cpuinfo_field(names: tuple[str, ...]) -> str:
    """The first ``/proc/cpuinfo`` line's value whose key is one of ``names``, or ""."""
    for line in _cpu_flags().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in names:
            return value.strip()
    return ""


def cpu_model_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere ``platform.processor()``), or the
    machine type when neither says."""
    import platform

    return _cpuinfo_field(("model name", "Model", "cpu model")) or platform.processor() or platform.machine()


def cpu_vendor() -> str:
    """``GenuineIntel``, ``AuthenticAMD``, ... (``/proc/cpuinfo``'s ``vendor_id``), or "" where it
    does not say (other operating systems, ARM)."""
    return _cpuinfo_field(("vendor_id",))


def kernel_flags() -> tuple[str, ...]:
    """Those of :data:`KERNEL_FLAGS` the CPU lists (``/proc/cpuinfo``'s flags or Features)."""
    listed = set(_cpuinfo_field(("flags", "Features")).split())
    return tuple(f for f in KERNEL_FLAGS if f in listed)


def kernel_env() -> dict[str, str]:
    """The :data:`KERNEL_ENV` variables that are set, and their values."""
    return {k: os.environ[k].strip() for k in KERNEL_ENV if os.environ.get(k, "").strip()}
