"""Helpers for the vitrine_stack tests (a uniquely named module, not a conftest)."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import psutil

import vitrine_runtime.topic_admin
import vitrine_schemas.topics
import vitrine_stack

TESTS_DIR = Path(__file__).parent
DUMMY_SERVICE = TESTS_DIR / "dummy_service.py"


def _source_root(module_file: str | None, depth: int) -> str:
    assert module_file is not None
    return str(Path(module_file).resolve().parents[depth])


# Where the packages were imported from, so that child interpreters find them whether
# they are installed or only on PYTHONPATH.
SOURCE_PATHS = [
    _source_root(vitrine_stack.__file__, 1),
    _source_root(vitrine_runtime.topic_admin.__file__, 1),
    _source_root(vitrine_schemas.topics.__file__, 1),
]


def subprocess_env(*extra_paths: str | Path, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(p) for p in extra_paths] + SOURCE_PATHS
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"):
        env.pop(key, None)  # the children must start their own infrastructure
    env.update(overrides)
    return env


def dummy_service_argv() -> list[str]:
    return [sys.executable, str(DUMMY_SERVICE)]


def make_dummy_package(root: Path, name: str = "vitrine_dummy") -> Path:
    """A package `name` whose `python -m name` runs the dummy service; returns its root."""
    package = root / "dummy_pkgs" / name
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    shutil.copy(DUMMY_SERVICE, package / "__main__.py")
    return package.parent


def alive(proc: psutil.Process) -> bool:
    """Running and not a zombie; is_running also guards against pid reuse."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(procs: Iterable[psutil.Process], timeout_s: float = 10.0) -> list[psutil.Process]:
    """Wait until none of `procs` runs; returns the ones still alive at the deadline."""
    procs = list(procs)
    deadline = time.monotonic() + timeout_s
    while True:
        left = [p for p in procs if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


class LineReader:
    """Collects a child's stdout lines on a thread, so waiting for one can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, marker: str, timeout_s: float = 60.0) -> str:
        """The rest of the first line that starts with `marker`."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if line.startswith(marker):
                return line[len(marker) :].strip()
        raise AssertionError(f"no line starting {marker!r}; output so far: {''.join(self.seen)}")
