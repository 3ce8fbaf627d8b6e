"""Who gets the CPU cores in a process that runs an inference engine.

Two ways an inference service loses its cores without any error:

* **A container's CPU quota.** Kubernetes' ``limits.cpu`` (Docker's ``--cpus``) is a CFS
  time quota, not a set of cores: the pod still sees every core of the node. OpenVINO,
  PyTorch and FFmpeg size their thread pools by the cores they see, and their threads
  work in lockstep, so once the kernel throttles the group for overrunning its quota,
  every thread waits for the throttled ones. Measured here (2 cores, cgroup v1, quota 1
  CPU): the catalog's network took 20.0 ms an image with OpenVINO's own choice of two
  threads against 14.1 ms with one; on a 64-core node with a 2-CPU limit the engine
  would start 32-64 threads (OpenVINO issue 37838, oneTBB issue 190). :func:`cpu_budget`
  reads the quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``) and the affinity mask,
  and services size their engines by it where it caps them.
* **numpy's BLAS threads spinning.** The catalog runs small numpy steps around its
  network (a 3x3 colour matrix over a batch's pixels, a matcher head over a few crops).
  numpy hands those to OpenBLAS, whose worker threads then *spin* for a while waiting
  for more work, on the cores the network's next pass and Pillow's decoders want:
  measured on an AVX2-only EPYC, a crop's network pass took 13.2 ms after a head
  projection and 6.7 ms without OpenBLAS threads, the whole embedding 17.3 ms against
  9.8 (bench/matcher). None of these products gains from a second thread:
  :func:`limit_blas_threads`. (The detector runs no threaded BLAS in its hot path:
  bench-detector gave the same figures with and without the cap, so it does not call it.)
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from threadpoolctl import ThreadpoolController

__all__ = ["CpuBudget", "cpu_budget", "limit_blas_threads"]

_lock = threading.Lock()

CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True, slots=True)
class CpuBudget:
    """The cores a process may run on, and the CPU time its cgroups allow it."""

    visible: int  # cores in its affinity mask
    quota: float | None  # CPUs of time per period, the tightest of its cgroups; None: no limit

    @property
    def threads(self) -> int:
        """Threads a lockstep engine should run: the quota rounded *down* (one thread
        more than the quota can run gets the whole group throttled), at least one, at
        most one per visible core."""
        if self.quota is None:
            return self.visible
        return max(1, min(self.visible, math.floor(self.quota)))

    @property
    def capped(self) -> bool:
        """Whether the quota allows fewer threads than the engines would count cores:
        only then is it worth overriding their own choice (which knows about SMT)."""
        return self.threads < self.visible

    def inference_threads(self, configured: int | None) -> int | None:
        """A configured thread count, else the budget where it caps the process, else
        None (the engine's own choice)."""
        if configured is not None:
            return configured
        return self.threads if self.capped else None

    def describe(self) -> str:
        quota = "no CPU quota" if self.quota is None else f"a CPU quota of {self.quota:g}"
        return f"{self.visible} cores visible, {quota}: {self.threads} inference threads"


def cpu_budget(cgroup_root: Path = CGROUP_ROOT, self_cgroup: Path = SELF_CGROUP) -> CpuBudget:
    """This process's :class:`CpuBudget` (Linux cgroup v2 or v1; elsewhere, no quota)."""
    try:
        visible = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        visible = os.cpu_count() or 1
    try:
        quota = _quota(cgroup_root, self_cgroup.read_text().splitlines())
    except (OSError, ValueError, ZeroDivisionError):
        # An unreadable or odd cgroup tree must not stop a service: no cap, as before.
        quota = None
    return CpuBudget(visible, quota)


def _quota(root: Path, memberships: list[str]) -> float | None:
    groups: dict[str, str] = {}
    for line in memberships:
        parts = line.split(":", 2)
        if len(parts) == 3:
            groups[parts[1]] = parts[2]
    if (root / "cgroup.controllers").is_file() and "" in groups:  # v2, mounted at root
        return _tightest(root, groups[""], _v2_quota)
    for controllers, path in groups.items():
        if "cpu" in controllers.split(","):
            for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                if mount.is_dir():
                    return _tightest(mount, path, _v1_quota)
    return None


def _tightest(mount: Path, path: str, read: Callable[[Path], float | None]) -> float | None:
    """The smallest quota from the process's cgroup up to the mount's root. Inside a
    container the mount's root *is* the container's cgroup and the host path in
    /proc/self/cgroup names nothing under it: then the root alone is read."""
    if ".." in Path(path).parts:
        # Outside its cgroup namespace's root: the cgroups above are not ours to read.
        return None
    group = mount / path.lstrip("/")
    if not group.is_dir():
        group = mount
    quotas = []
    while True:
        quota = read(group)
        if quota is not None:
            quotas.append(quota)
        if group == mount or mount not in group.parents:
            break
        group = group.parent
    return min(quotas) if quotas else None


def _v2_quota(group: Path) -> float | None:
    try:
        quota, period = (group / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1_quota(group: Path) -> float | None:
    try:
        quota = int((group / "cpu.cfs_quota_us").read_text())
        period = int((group / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def limit_blas_threads(threads: int = 1) -> list[str]:
    """Cap numpy's BLAS (OpenBLAS, MKL or BLIS, as loaded) at ``threads`` for the whole
    process; returns the libraries it capped (paths), for the start-up log.

    Process-wide on purpose: the spinning threads belong to the BLAS library, not to
    the caller, so a cap scoped to one call would leave every other one spinning.
    PyTorch's own intra-op threads (``torch.set_num_threads``) are not touched.
    """
    if threads < 1:
        raise ValueError(f"BLAS needs at least one thread, not {threads}")
    import numpy  # noqa: F401 - loads the BLAS numpy uses, so the controller finds it

    with _lock:
        blas = ThreadpoolController().select(user_api="blas")
        blas.limit(limits=threads)
        return [str(info["filepath"]) for info in blas.info()]
