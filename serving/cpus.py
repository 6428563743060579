"""The CPUs this process may really use: the cgroup quota, not the host's core count."""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _quota(cgroup_v2: Path, v1_quota: Path, v1_period: Path) -> float | None:
    try:
        if cgroup_v2.is_file():
            quota, period = cgroup_v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if v1_quota.is_file():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def available_cpus(
    cgroup_v2: Path = CGROUP_V2, v1_quota: Path = CGROUP_V1_QUOTA, v1_period: Path = CGROUP_V1_PERIOD
) -> int:
    """min(affinity, ceil(quota)), at least 1: a pod limited to 1.5 CPUs on a 64-core node gets 2."""
    count = len(os.sched_getaffinity(0))
    quota = _quota(cgroup_v2, v1_quota, v1_period)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)
