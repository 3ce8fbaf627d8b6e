"""`python -m vitrine_stack up|topics` as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from stack_testing import (
    LineReader,
    make_dummy_package,
    process_tree,
    subprocess_env,
    wait_gone,
)

from vitrine_schemas.topics import TOPICS
from vitrine_stack.broker import TansuBroker


def test_up_prints_where_things_are_and_stops_on_sigint(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitrine_stack", "up", "--data-dir", str(data), "--services", ""],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = LineReader(proc)
        output.wait_for("Press Ctrl-C", timeout_s=90)
        table = "".join(output.seen)
        state = json.loads((data / "platform.json").read_text())
        assert state["bootstrap_servers"] in table
        assert state["database_url"] in table
        assert f"export DATABASE_URL={state['database_url']}" in table
        procs = [
            psutil.Process(p.pid)
            for p in process_tree(proc.pid)[1:]  # tansu, postgres and its workers
        ]
        assert len(procs) >= 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert wait_gone(procs, 10) == []
    finally:
        proc.kill()
        proc.wait()


def _wait_for_child(proc: subprocess.Popen[str], needle: str) -> list[psutil.Process]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        tree = process_tree(proc.pid)[1:]
        if any(needle in _cmdline(p) for p in tree):
            return tree
        time.sleep(0.1)
    raise AssertionError(f"no child process matching {needle!r}")


def _cmdline(process: psutil.Process) -> str:
    # A short-lived helper (a port probe, say) may exit or be a zombie by the time it is read.
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess is a NoSuchProcess
        return ""


def test_sigterm_during_start_stops_everything(tmp_path: Path) -> None:
    packages = make_dummy_package(tmp_path)
    command = [sys.executable, "-m", "vitrine_stack", "up", "--data-dir", str(tmp_path / "data")]
    proc = subprocess.Popen(
        [*command, "--services", "dummy"],
        env=subprocess_env(packages, DUMMY_MODE="slow", DUMMY_DELAY="600"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = LineReader(proc)
        children = _wait_for_child(proc, "vitrine_dummy")  # waiting for its /readyz
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        output.wait_for("start interrupted", timeout_s=5)
        assert wait_gone(children, 10) == []
    finally:
        proc.kill()
        proc.wait()


def test_failing_service_makes_up_exit_1(tmp_path: Path) -> None:
    packages = make_dummy_package(tmp_path)
    command = [sys.executable, "-m", "vitrine_stack", "up", "--data-dir", str(tmp_path / "data")]
    result = subprocess.run(
        [*command, "--services", "dummy"],
        env=subprocess_env(packages, DUMMY_MODE="exit"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1
    assert "start failed: service 'dummy' exited with code 3" in result.stderr
    assert "dummy: failing on purpose" in result.stderr


def test_topics_command_creates_registry_topics() -> None:
    with TansuBroker() as broker:
        command = [sys.executable, "-m", "vitrine_stack", "topics"]
        env = subprocess_env(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers)
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert first.stdout.count("created") == len(TOPICS)
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("exists") == len(TOPICS)


def test_topics_command_needs_a_broker() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vitrine_stack", "topics"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
