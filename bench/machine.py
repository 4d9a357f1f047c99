"""The whole machine's busy CPU time, from /proc/stat: what else ran during a measurement."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def busy_s() -> float | None:
    """Seconds all cores together spent not idle since boot (None where /proc is absent)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICK


def other_cores(
    busy_before: float | None, busy_after: float | None, own_cpu_s: float, wall_s: float
) -> float | None:
    """Cores busy with anything but `own_cpu_s` over `wall_s`: the noise of a measurement."""
    if busy_before is None or busy_after is None or wall_s <= 0:
        return None
    return max(0.0, (busy_after - busy_before - own_cpu_s) / wall_s)


def wait_idle(timeout_s: float, threshold_cores: float = 0.3, step_s: float = 5.0) -> float | None:
    """Wait until two `step_s` windows in a row have less than `threshold_cores` busy.

    Returns the busy cores of the last window (None where /proc is absent); gives up after
    `timeout_s` and returns what it last saw.
    """
    import time

    deadline = time.monotonic() + timeout_s
    quiet, last = 0, None
    while time.monotonic() < deadline:
        before = busy_s()
        time.sleep(step_s)
        after = busy_s()
        if before is None or after is None:
            return None
        last = (after - before) / step_s
        quiet = quiet + 1 if last < threshold_cores else 0
        if quiet >= 2:
            break
    return last


# The instruction sets that change what a CPU runtime can do (OpenVINO's INT8 and BF16 kernels).
ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def cpu_flags() -> list[str]:
    """The ISA_FLAGS this CPU reports in /proc/cpuinfo, by their usual names (empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [name for flag, name in ISA_FLAGS.items() if flag in have]
    except OSError:
        pass
    return []
