"""What this CPU is (its vector extensions, as its CPUID tells them) and can run right: int8 files whose weights
would saturate without VNNI (keypoints.training.quantize says why) are refused where they would move keypoints
by pixels."""

import json
import platform
from pathlib import Path

try:  # what numpy's dispatch read from CPUID at import (cpu_features)
    from numpy._core._multiarray_umath import __cpu_features__ as NUMPY_FEATURES
except ImportError:
    NUMPY_FEATURES = None

# The metadata key (beside model_files.METADATA_KEYS) that says how a file was quantized, as JSON.
QUANTIZATION_KEY = "quantization"


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's flags as /proc/cpuinfo lists them (Linux); empty where they cannot be read. Under an
    emulator (qemu-user) they are the host's: cpu_features says what the code runs on."""
    try:
        flags = next((line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(flags.split())


def cpu_features() -> set[str]:
    """The vector extensions this process runs with, in numpy's names (AVX2, AVX512F, AVX512VNNI,
    AVX512BF16, ...): numpy's dispatch reads them from the CPU's CPUID at import, as ONNX Runtime's kernels
    do, so an emulated CPU (qemu-x86_64 -cpu Haswell-v4) is seen as itself, not as the host."""
    if NUMPY_FEATURES is None:  # another numpy layout: the OS's list, in numpy's spelling
        return {f.upper().replace("_", "") for f in cpu_flags()}
    return {name for name, present in NUMPY_FEATURES.items() if present}


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """AVX512-VNNI or AVX-VNNI on this CPU (or in a cpuinfo file's flags, when one is given)."""
    if cpuinfo is not None:
        return bool({"avx512_vnni", "avx_vnni"} & cpu_flags(cpuinfo))
    return bool({"AVX512VNNI", "AVXVNNI"} & cpu_features())


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """AVX512-BF16 or AMX-BF16 on this CPU (or in a cpuinfo file's flags): where bf16 autocast trains faster
    than float32. Without them it is emulated and about 14x slower (docs/RESULTS.md, "Int8 and the CPU")."""
    if cpuinfo is not None:
        return bool({"avx512_bf16", "amx_bf16"} & cpu_flags(cpuinfo))
    return "AVX512BF16" in cpu_features() or "amx_bf16" in cpu_flags()


def vector_extensions() -> str:
    """The extensions that decide int8 and float speed, in a few words: every speed and int8 figure names them."""
    features = cpu_features()
    if "AVX512F" in features:
        return "AVX-512" + (" VNNI" if "AVX512VNNI" in features else "") + (" BF16" if "AVX512BF16" in features else "")
    return "AVX2-only" if "AVX2" in features else "AVX, no AVX2" if "AVX" in features else "no AVX"


def saturates_on_this_cpu(quantization: str | None) -> bool:
    """True when a file with this `quantization` metadata would give wrong keypoints on this CPU:
    uint8 x full-range int8 weights on an x86 CPU without VNNI. Files written before the metadata
    was JSON used full-range weights."""
    if not quantization:
        return False  # a float model
    try:
        reduce_range = bool(json.loads(quantization).get("reduce_range"))
    except (ValueError, AttributeError):
        reduce_range = False
    return not reduce_range and is_x86() and not cpu_has_vnni()
