"""What this CPU can run right: int8 files whose weights would saturate without VNNI (keypoints.training.quantize
says why) are refused where they would move keypoints by pixels."""

import json
import platform
from pathlib import Path

# The metadata key (beside model_files.METADATA_KEYS) that says how a file was quantized, as JSON.
QUANTIZATION_KEY = "quantization"


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's flags (Linux); empty where they cannot be read."""
    try:
        flags = next((line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(flags.split())


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name as the OS reports it ("AMD EPYC", "Intel(R) Xeon(R) ..."), or the platform's word for it."""
    try:
        line = next((line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("model name")), "")
    except OSError:
        line = ""
    return line.partition(":")[2].strip() or platform.processor() or platform.machine()


def cpu_has_vnni(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """AVX512-VNNI or AVX-VNNI in the CPU's flags; False where the flags cannot be read."""
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags(cpuinfo))


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """AVX512-BF16 or AMX-BF16 in the CPU's flags (Linux): where bf16 autocast trains faster than float32.
    Without them it is emulated and about 14x slower (docs/RESULTS.md, "Int8 and the CPU")."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags(cpuinfo))


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
