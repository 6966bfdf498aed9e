"""What the run measures of its own processes: peak and current memory (/proc), and how many workers the
machine can hold."""

from __future__ import annotations

import logging
import resource

from ..executor import default_workers

log = logging.getLogger("pagewash")


def own_kb(field: str = "VmHWM") -> int:
    """This process's peak (`VmHWM`) or current (`VmRSS`) resident memory, kB.

    Linux's VmHWM belongs to the process's own memory; `ru_maxrss` is carried across execve, so a driver
    started by a large parent (a benchmark holding its corpus) would report the parent's peak as its own.
    """
    found = proc_kb("/proc/self/status", field)
    return found if found is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB, Linux and BSD


def proc_kb(path: str, field: str) -> int | None:
    """A `Field:  N kB` figure of a /proc file (`/proc/self/status`, `/proc/meminfo`); None where there is none."""
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak() -> bool:
    """Start VmHWM afresh (Linux 4.0+), so that a phase's own peak can be read; False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(earlier_peak_kb: int = 0) -> dict:
    # workers are forked, never exec'd: their ru_maxrss is their own
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    driver_kb = max(own_kb(), earlier_peak_kb)
    return {"driver": round(driver_kb / 1024, 1), "largest_worker": round(children_kb / 1024, 1)}


WORKER_BUDGET_MB = 300  # what a cleaning worker holds at its peak (~140 MB measured by bench/speed.py), with room


def cap_workers(requested: int) -> int:
    """At most four workers a core and as many as the available memory holds at WORKER_BUDGET_MB each: a
    pool far beyond that (`--workers 500`) swaps the machine to a halt instead of running faster."""
    cores = default_workers()
    limit = 4 * cores
    available_mb = (proc_kb("/proc/meminfo", "MemAvailable") or 0) // 1024
    if available_mb:
        limit = min(limit, available_mb // WORKER_BUDGET_MB)
    limit = max(1, limit)
    if requested > limit:
        log.warning("%d workers capped to %d: this machine has %d cores and %s MB of memory available (~%d MB a "
                    "worker)", requested, limit, cores, available_mb or "unknown", WORKER_BUDGET_MB)
        return limit
    return requested
