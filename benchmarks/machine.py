"""The machine a benchmark ran on, as its results state it (GP fits and timings vary with it)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """``<architecture>, <processor>``, the processor as ``/proc/cpuinfo`` names it."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{platform.machine()}, {names[0] if names else platform.processor()}"
