"""What a benchmark reads off the processes it runs: CPU time and peak memory, from ``/proc``.

On a shared two-core machine wall-clock figures move with other work; the CPU
each process used per record or per read says where the budget goes and
changes much less.
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (``/proc/<pid>/stat``), in seconds.

    Read before and after the timed submission: on two cores the sum over all
    processes is the budget a record rate has to fit in.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle so far (``/proc/stat``), in seconds.

    Covers what the per-process figures miss: the PostgreSQL server's backends,
    the kernel's TLS and network work, and anything else on the machine.
    """
    ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
