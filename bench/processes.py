"""A server's processes as the benchmarks see them: the process and its workers, their CPU.

Read from /proc (Linux), so they cost nothing while timed; elsewhere the figures are NaN.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from bench import memory


def children(pid: int) -> list[int]:
    """The processes `pid` started (uvicorn's workers, say), found by their parent id."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def family(pid: int) -> list[int]:
    """The process and every process under it."""
    out = [pid]
    for child in children(pid):
        out.extend(family(child))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process and everything under it so far."""
    total = 0.0
    for member in family(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            if member == pid:
                return math.nan
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": utime, stime 14th, 15th
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def memory_lines(what: str, pid: int) -> list[str]:
    """The memory of each process of a server: the workers one by one when it has some."""
    members = family(pid)
    if len(members) == 1:
        return [memory.describe(what, pid)]
    return [memory.describe(f"{what} process {member}", member) for member in members]
