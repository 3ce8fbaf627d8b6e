from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from vitrine_runtime.cores import CpuBudget, cpu_budget, limit_blas_threads


@pytest.fixture
def blas() -> Iterator[ThreadpoolController]:
    """numpy's BLAS, with its thread count put back after the test."""
    controller = ThreadpoolController().select(user_api="blas")
    before = {info["filepath"]: info["num_threads"] for info in controller.info()}
    yield controller
    for library in controller.lib_controllers:
        library.set_num_threads(before[library.filepath])


def test_caps_the_blas_numpy_uses(blas: ThreadpoolController) -> None:
    if not blas.lib_controllers:
        pytest.fail("numpy loaded no BLAS that threadpoolctl can see")
    for library in blas.lib_controllers:
        library.set_num_threads(2)
    if {info["num_threads"] for info in blas.info()} != {2}:
        pytest.fail("this BLAS keeps one thread whatever it is told: nothing to cap")

    capped = limit_blas_threads()

    assert capped == [library.filepath for library in blas.lib_controllers]
    assert [info["num_threads"] for info in blas.info()] == [1] * len(capped)
    # numpy still computes, on the caller's thread.
    assert np.allclose(np.ones((64, 64)) @ np.ones((64, 64)), 64.0)


def test_takes_a_larger_cap(blas: ThreadpoolController) -> None:
    limit_blas_threads(2)
    assert {info["num_threads"] for info in blas.info()} == {2}


def test_refuses_zero_threads() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        limit_blas_threads(0)


# --- the CPU budget, read from cgroup trees laid out as the kernel lays them out ---


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v2(tmp_path: Path, limits: dict[str, str], own: str) -> CpuBudget:
    root = tmp_path / "cgroup"
    _write(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    for group, cpu_max in limits.items():
        _write(root / group / "cpu.max", cpu_max)
    (root / own.lstrip("/")).mkdir(parents=True, exist_ok=True)
    _write(tmp_path / "self", f"0::{own}\n")
    return cpu_budget(root, tmp_path / "self")


def test_v2_reads_the_pods_quota(tmp_path: Path) -> None:
    budget = _v2(tmp_path, {"kubepods/pod1/c1": "200000 100000\n"}, "/kubepods/pod1/c1")
    assert budget.quota == 2.0
    assert budget.threads == min(2, budget.visible)


def test_v2_takes_the_tightest_cgroup_up_the_tree(tmp_path: Path) -> None:
    budget = _v2(
        tmp_path,
        {"kubepods/pod1": "150000 100000\n", "kubepods/pod1/c1": "max 100000\n"},
        "/kubepods/pod1/c1",
    )
    assert budget.quota == 1.5
    assert budget.threads == 1  # rounded down: a second thread would get both throttled


def test_v2_without_a_limit_has_no_quota(tmp_path: Path) -> None:
    budget = _v2(tmp_path, {"": "max 100000\n", "app": "max 100000\n"}, "/app")
    assert budget.quota is None
    assert budget.threads == budget.visible
    assert not budget.capped


def test_v2_inside_a_container_reads_the_mounts_root(tmp_path: Path) -> None:
    """In a container /proc/self/cgroup may name the host's path, which the container's
    cgroup mount does not hold: its root is the container's own cgroup."""
    root = tmp_path / "cgroup"
    _write(root / "cgroup.controllers", "cpu\n")
    _write(root / "cpu.max", "50000 100000\n")
    _write(tmp_path / "self", "0::/kubepods.slice/kubepods-pod9.slice/cri-abc.scope\n")
    budget = cpu_budget(root, tmp_path / "self")
    assert budget.quota == 0.5
    assert budget.threads == 1


def test_v1_reads_cfs_quota_and_period(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    cpu = root / "cpu,cpuacct"
    _write(cpu / "cpu.cfs_quota_us", "-1\n")
    _write(cpu / "cpu.cfs_period_us", "100000\n")
    _write(cpu / "docker" / "c1" / "cpu.cfs_quota_us", "100000\n")
    _write(cpu / "docker" / "c1" / "cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "self", "12:pids:/docker/c1\n4:cpu,cpuacct:/docker/c1\n0::/\n")
    budget = cpu_budget(root, tmp_path / "self")
    assert budget.quota == 1.0
    assert budget.threads == 1


def test_v1_unlimited_has_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "cpu" / "cpu.cfs_quota_us", "-1\n")
    _write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    _write(tmp_path / "self", "1:cpu:/\n")
    assert cpu_budget(root, tmp_path / "self").quota is None


def test_v1_takes_the_tightest_cgroup_up_the_tree_through_the_cpu_link(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    cpu = root / "cpu,cpuacct"
    _write(cpu / "kubepods" / "cpu.cfs_quota_us", "300000\n")
    _write(cpu / "kubepods" / "cpu.cfs_period_us", "100000\n")
    _write(cpu / "kubepods" / "pod1" / "cpu.cfs_quota_us", "-1\n")
    _write(cpu / "kubepods" / "pod1" / "cpu.cfs_period_us", "100000\n")
    (root / "cpu").symlink_to(cpu)  # as systemd mounts it: cpu -> cpu,cpuacct
    _write(tmp_path / "self", "3:cpu,cpuacct:/kubepods/pod1\n")
    assert cpu_budget(root, tmp_path / "self").quota == 3.0


def test_a_cgroup_outside_its_namespace_root_is_not_read(tmp_path: Path) -> None:
    budget = _v2(tmp_path, {"": "100000 100000\n"}, "/")
    _write(tmp_path / "self", "0::/../sibling\n")
    assert budget.quota == 1.0
    assert cpu_budget(tmp_path / "cgroup", tmp_path / "self").quota is None


def test_an_unreadable_quota_means_no_cap(tmp_path: Path) -> None:
    assert _v2(tmp_path, {"app": "lots 100000\n"}, "/app").quota is None
    assert _v2(tmp_path, {"app": "100000 0\n"}, "/app").quota is None


def test_no_cgroup_information_means_no_quota(tmp_path: Path) -> None:
    assert cpu_budget(tmp_path / "nothing", tmp_path / "missing").quota is None


@pytest.mark.parametrize(
    ("visible", "quota", "threads", "capped"),
    [
        (64, 2.0, 2, True),
        (64, 2.9, 2, True),
        (64, 0.25, 1, True),
        (2, 4.0, 2, False),
        (8, None, 8, False),
    ],
)
def test_threads_follow_the_quota_rounded_down(
    visible: int, quota: float | None, threads: int, capped: bool
) -> None:
    budget = CpuBudget(visible, quota)
    assert (budget.threads, budget.capped) == (threads, capped)


def test_a_configured_thread_count_wins_and_an_uncapped_budget_leaves_the_engine_to_choose() -> (
    None
):
    assert CpuBudget(64, 2.0).inference_threads(None) == 2
    assert CpuBudget(64, 2.0).inference_threads(6) == 6
    assert CpuBudget(64, None).inference_threads(None) is None
