"""Memory figures for the benchmarks: a process's resident set now and at its peak.

Read from /proc (Linux), so they cost nothing while timed; elsewhere they are unknown (None).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Memory:
    rss_mib: float  # resident now
    peak_mib: float  # the high-water mark since the process started

    def __str__(self) -> str:
        return f"{self.rss_mib:.0f} MiB resident (peak {self.peak_mib:.0f} MiB)"


def of(pid: int | None = None) -> Memory | None:
    """The process's memory (this one's without a pid); None where /proc cannot tell."""
    status = Path(f"/proc/{pid or os.getpid()}/status")
    try:
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        rss, peak = (int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))
    except (OSError, KeyError, ValueError):
        return None
    return Memory(rss, peak)


def describe(what: str, pid: int | None = None) -> str:
    memory = of(pid)
    return f"memory of {what}: {memory if memory is not None else 'unknown'}"
