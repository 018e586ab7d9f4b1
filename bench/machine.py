"""What every benchmark prints about the machine it ran on (imported by the bench scripts)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from tuner.study.workers import usable_cores as nproc

__all__ = ["cpu_model", "load_average", "nproc"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
