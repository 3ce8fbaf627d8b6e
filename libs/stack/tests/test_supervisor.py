"""Supervisor: readiness, failure reports, stop/kill/restart, and no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest
from stack_testing import (
    LineReader,
    alive,
    dummy_service_argv,
    process_tree,
    subprocess_env,
    wait_gone,
)

from vitrine_stack.supervisor import ChildProcess, ServiceFailed, ServiceSpec, Supervisor, free_port


def dummy_spec(name: str = "dummy", **env: str) -> ServiceSpec:
    port = free_port()
    return ServiceSpec(
        name=name,
        argv=dummy_service_argv(),
        env={**os.environ, "SERVICE_NAME": name, "HTTP_PORT": str(port), **env},
        port=port,
    )


async def test_child_becomes_ready_and_stop_leaves_nothing(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    managed = await supervisor.start(dummy_spec(DUMMY_MODE="grandchild"))
    assert managed.running
    async with httpx.AsyncClient(trust_env=False) as client:
        pids = (await client.get(f"{managed.url}/pid")).json()
    tree = process_tree(managed.pid)
    assert {p.pid for p in tree} >= {pids["pid"], *pids["children"]}
    # Own process group (and session), away from the launcher's.
    assert os.getpgid(managed.pid) == managed.pid != os.getpgid(0)

    await supervisor.stop_all()
    assert wait_gone(tree, 5) == []  # the grandchild in the group went too
    assert managed.returncode is not None
    log = supervisor.log_path("dummy").read_text()
    assert "dummy listening on" in log
    assert "GET /readyz" in log


async def test_child_that_exits_early_fails_with_its_last_lines(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    with pytest.raises(ServiceFailed) as caught:
        await supervisor.start(dummy_spec(DUMMY_MODE="exit"))
    assert "exited with code 3" in str(caught.value)
    assert "dummy: failing on purpose" in caught.value.last_lines


async def test_readiness_timeout(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs", ready_timeout_s=1.0, stop_timeout_s=2.0)
    spec = dummy_spec(DUMMY_MODE="slow", DUMMY_DELAY="30")
    with pytest.raises(ServiceFailed, match="was not ready"):
        await supervisor.start(spec)
    assert not supervisor["dummy"].running  # a failed start does not leave it running


async def test_sigterm_ignored_means_sigkill_after_timeout(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs", stop_timeout_s=1.0)
    managed = await supervisor.start(dummy_spec(DUMMY_MODE="ignore-term"))
    started = time.monotonic()
    await supervisor.stop("dummy")
    assert 0.9 < time.monotonic() - started < 5
    assert managed.returncode == -signal.SIGKILL


async def test_restart_and_kill(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    first = await supervisor.start(dummy_spec())
    old = psutil.Process(first.pid)
    second = await supervisor.restart("dummy")
    assert second.pid != first.pid
    assert second.port == first.port
    assert second.restarts == 1
    assert not alive(old)
    assert first.returncode == -signal.SIGKILL
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"{second.url}/readyz")).status_code == 200

    assert await supervisor.kill("dummy") == -signal.SIGKILL
    third = await supervisor.start(second.spec)
    assert third.running
    await supervisor.stop_all()
    assert supervisor.log_path("dummy").read_text().count("----- ") == 3


async def test_parallel_start_many(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    specs = [dummy_spec(f"svc{i}", DUMMY_MODE="slow", DUMMY_DELAY="1") for i in range(3)]
    started = time.monotonic()
    try:
        await supervisor.start_many(specs)
        assert time.monotonic() - started < 3  # in parallel, not 3 x 1 s
        assert all(p.running for p in supervisor.processes.values())
    finally:
        await supervisor.stop_all()
    assert not any(p.running for p in supervisor.processes.values())


async def test_start_many_reports_the_failing_service(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    specs = [dummy_spec("good"), dummy_spec("bad", DUMMY_MODE="exit")]
    try:
        with pytest.raises(ServiceFailed) as caught:
            await supervisor.start_many(specs)
        assert caught.value.name == "bad"
    finally:
        await supervisor.stop_all()
    assert not supervisor["good"].running


def test_output_is_copied_and_echoed(tmp_path: Path) -> None:
    echo_path = tmp_path / "echo.txt"
    with echo_path.open("w") as echo:
        child = ChildProcess(
            "printer",
            [sys.executable, "-c", "print('line one'); print('line two')"],
            log_path=tmp_path / "printer.log",
            echo=echo,
        )
        child.popen.wait(10)
        assert child.tail() == ["line one", "line two"]
        child.stop()
    assert (tmp_path / "printer.log").read_text().endswith("line one\nline two\n")
    assert "   printer | line two" in echo_path.read_text()


LAUNCHER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from pathlib import Path
    from vitrine_stack.supervisor import ServiceSpec, Supervisor, free_port

    async def main():
        supervisor = Supervisor(Path(sys.argv[1]))
        port = free_port()
        env = {**os.environ, "HTTP_PORT": str(port)}
        spec = ServiceSpec("dummy", [sys.executable, sys.argv[2]], env=env, port=port)
        managed = await supervisor.start(spec)
        print("READY", json.dumps({"pid": managed.pid}), flush=True)
        await asyncio.sleep(600)

    asyncio.run(main())
    """
)


def test_children_die_with_a_sigkilled_launcher(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path / "logs"), dummy_service_argv()[1]],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        info = json.loads(LineReader(launcher).wait_for("READY", timeout_s=60))
        service = psutil.Process(info["pid"])
        assert service.ppid() == launcher.pid
        launcher.kill()
        launcher.wait(5)
        # PR_SET_PDEATHSIG: the kernel sends the service SIGTERM when the launcher dies.
        assert wait_gone([service], 5) == [], "the service outlived its SIGKILLed launcher"
    finally:
        launcher.kill()
        launcher.wait()
