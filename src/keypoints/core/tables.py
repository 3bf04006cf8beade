"""The one markdown table writer behind every report (benchmark, speed, sweep comparison, video), and the CPU they name."""

import platform
import subprocess


def markdown(header: list[str], rows: list[list]) -> str:
    """A GitHub markdown table: `header` cells, then one line per row of already formatted cells."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, cells)) + " |" for cells in rows]
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU's model name: every report names its CPU, and `auto`'s cache keys on it (on every first load,
    so /proc/cpuinfo is read before lscpu is started; lscpu names ARM cores that file leaves unnamed)."""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        name = ""
    if name:
        return name
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name:")]
    return names[0] if names else platform.processor() or "an unnamed CPU"
