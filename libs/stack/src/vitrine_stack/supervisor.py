"""Child processes that cannot outlive the launcher, and a supervisor for HTTP services.

Every child runs in its own session (so its own process group), which lets the launcher
signal the child together with anything it forks, and keeps a terminal's Ctrl-C away from
the children so that the launcher decides the shutdown order. Each child also asks the
kernel (PR_SET_PDEATHSIG) for a signal when the launcher dies, so a SIGKILLed launcher
leaves no child behind. (Grandchildren get no such signal: a child that forks must end
its own children when it gets SIGTERM. A normal stop kills the whole group anyway.)

PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process:
spawn from a thread that lives as long as the children (the event loop's thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self, TextIO

import httpx

__all__ = [
    "ChildProcess",
    "ManagedProcess",
    "ServiceFailed",
    "ServiceSpec",
    "Supervisor",
    "free_port",
    "port_is_free",
]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

# Resolved before any fork: the child must not load libraries between fork and exec.
_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    _prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (another process may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could bind `port` now (a listener elsewhere makes bind fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _child_preexec(pdeath_signal: int, parent_pid: int) -> Callable[[], None]:
    def setup() -> None:
        # subprocess calls this after setuid/setgid; the kernel clears PDEATHSIG on a
        # credential change, so it has to be set here and not earlier.
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, pdeath_signal, 0, 0, 0)
        # The launcher may have died between fork and prctl: then no signal would come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


class ChildProcess:
    """One child in its own process group, writing stdout and stderr to a log file.

    The child writes to the file itself (O_APPEND), so the log stays complete even when
    the launcher is killed, and no pipe can fill up and block it. Without `log_path` the
    output goes to a temporary file, removed once the child is stopped.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: Path | None = None,
        echo: TextIO | None = None,
        pdeath_signal: int = signal.SIGTERM,
        user: int | None = None,
        group: int | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self._temporary_log = log_path is None
        if log_path is None:
            fd, temp_name = tempfile.mkstemp(prefix=f"vitrine-{name}-", suffix=".log")
            os.close(fd)
            log_path = Path(temp_name)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        extra: dict[str, object] = {}
        if user is not None:
            # setgroups needs root; only then may we drop to another user.
            extra = {"user": user, "group": group, "extra_groups": []}
        with open(log_path, "ab") as log_file:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log_file.write(f"----- {stamp} start: {' '.join(self.argv)}\n".encode())
            log_file.flush()
            self._log_start = log_file.tell()  # where this incarnation's output begins
            self.popen: subprocess.Popen[bytes] = subprocess.Popen(  # noqa: S603
                self.argv,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_child_preexec(pdeath_signal, os.getpid()),
                **extra,  # type: ignore[call-overload]
            )
        self.pid: int = self.popen.pid
        self.pgid: int = self.popen.pid  # a session leader leads its own process group
        self._echo_done = threading.Event()
        self._echo: threading.Thread | None = None
        if echo is not None:
            self._echo = threading.Thread(
                target=self._follow, args=(echo,), name=f"echo-{name}", daemon=True
            )
            self._echo.start()

    def _follow(self, echo: TextIO) -> None:
        """Print the child's new log lines, prefixed with its name, until it is stopped."""
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self._log_start)
            partial = b""
            while True:
                chunk = log_file.read(65536)
                if not chunk:
                    if self._echo_done.is_set():
                        return
                    time.sleep(0.1)
                    continue
                *lines, partial = (partial + chunk).split(b"\n")
                try:
                    for line in lines:
                        text = line.decode("utf-8", "replace").rstrip("\r")
                        echo.write(f"{self.name:>10} | {text}\n")
                    echo.flush()
                except (OSError, ValueError):
                    return  # the console went away; the log file still has everything

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> list[str]:
        """The last output lines of this incarnation of the child."""
        try:
            with open(self.log_path, "rb") as log_file:
                size = log_file.seek(0, os.SEEK_END)
                log_file.seek(max(self._log_start, size - 65536))
                data = log_file.read()
        except OSError:
            return []
        return data.decode("utf-8", "replace").splitlines()[-lines:]

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.pgid, sig)

    def _finish(self) -> None:
        # Stragglers the child forked into its group go too; once the leader is reaped
        # and the group is empty this is a harmless ESRCH.
        self.signal_group(signal.SIGKILL)
        self._echo_done.set()
        if self._echo is not None:
            self._echo.join(2.0)
        if self._temporary_log:
            self.log_path.unlink(missing_ok=True)

    async def _await_exit(self, timeout_s: float | None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        # Popen offers no awaitable exit (and asyncio's child watchers would tie the
        # child to one loop), so poll; 20 ms is nothing next to a shutdown.
        while self.popen.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def astop(self, timeout_s: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """Send `sig` to the group, wait up to `timeout_s`, then SIGKILL the group."""
        if self.popen.poll() is None:
            self.signal_group(sig)
            if not await self._await_exit(timeout_s):
                log.warning("%s ignored signal %s for %.0fs; killing it", self.name, sig, timeout_s)
                self.signal_group(signal.SIGKILL)
                await self._await_exit(None)
        self._finish()
        return self.popen.returncode

    def stop(self, timeout_s: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """Blocking `astop`."""
        if self.popen.poll() is None:
            self.signal_group(sig)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s ignored signal %s for %.0fs; killing it", self.name, sig, timeout_s)
                self.signal_group(signal.SIGKILL)
                self.popen.wait()
        self._finish()
        return self.popen.returncode

    async def akill(self) -> int:
        """SIGKILL the group and reap the child (a crash, as far as the child can tell)."""
        self.signal_group(signal.SIGKILL)
        await self._await_exit(None)
        self._finish()
        return self.popen.returncode

    def kill(self) -> int:
        """Blocking `akill`."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait()
        self._finish()
        return self.popen.returncode


class ServiceFailed(RuntimeError):
    """A service exited or did not become ready; carries its last log lines."""

    def __init__(self, name: str, reason: str, last_lines: Sequence[str] = ()) -> None:
        self.name = name
        self.reason = reason
        self.last_lines = list(last_lines)
        detail = "\n".join(f"    {line}" for line in self.last_lines) or "    (no output)"
        super().__init__(f"service {name!r} {reason}; last output:\n{detail}")


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service. `env` is the child's whole environment, not additions."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    port: int | None = None  # readiness is polled here; None: ready once spawned
    ready_path: str = "/readyz"
    cwd: str | Path | None = None
    host: str = "127.0.0.1"

    @property
    def url(self) -> str | None:
        return f"http://{self.host}:{self.port}" if self.port is not None else None


@dataclass
class ManagedProcess:
    """A supervised service: its spec and the current incarnation of its process."""

    spec: ServiceSpec
    child: ChildProcess
    log_path: Path
    restarts: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def port(self) -> int | None:
        return self.spec.port

    @property
    def url(self) -> str | None:
        return self.spec.url

    @property
    def pid(self) -> int:
        return self.child.pid

    @property
    def running(self) -> bool:
        return self.child.running

    @property
    def returncode(self) -> int | None:
        return self.child.returncode


class Supervisor:
    """Starts services, waits for their /readyz, restarts and stops them."""

    def __init__(
        self,
        log_dir: Path,
        *,
        echo: TextIO | None = None,
        ready_timeout_s: float = 120.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.echo = echo
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._procs: dict[str, ManagedProcess] = {}

    @property
    def processes(self) -> Mapping[str, ManagedProcess]:
        return dict(self._procs)

    def __getitem__(self, name: str) -> ManagedProcess:
        try:
            return self._procs[name]
        except KeyError:
            raise KeyError(f"no service named {name!r}; have {sorted(self._procs)}") from None

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, spec: ServiceSpec) -> ManagedProcess:
        """Start the process without waiting for readiness."""
        current = self._procs.get(spec.name)
        if current is not None and current.running:
            raise RuntimeError(f"service {spec.name!r} is already running (pid {current.pid})")
        child = ChildProcess(
            spec.name,
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            log_path=self.log_path(spec.name),
            echo=self.echo,
        )
        managed = ManagedProcess(spec, child, self.log_path(spec.name))
        if current is not None:
            managed.restarts = current.restarts + 1
        self._procs[spec.name] = managed
        return managed

    async def wait_ready(self, name: str, timeout_s: float | None = None) -> None:
        managed = self[name]
        url = managed.url
        if url is None:
            return
        url += managed.spec.ready_path
        timeout = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        # trust_env=False: a proxy from the environment must not intercept 127.0.0.1.
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                child = managed.child
                if not child.running:
                    raise ServiceFailed(
                        name,
                        f"exited with code {child.returncode} before it was ready",
                        child.tail(),
                    )
                try:
                    response = await client.get(url)
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise ServiceFailed(
                        name, f"was not ready at {url} after {timeout:.0f}s", child.tail()
                    )
                await asyncio.sleep(0.1)

    async def start(self, spec: ServiceSpec, timeout_s: float | None = None) -> ManagedProcess:
        """Spawn and wait until ready; a service that fails to get ready is stopped."""
        managed = self.spawn(spec)
        try:
            await self.wait_ready(spec.name, timeout_s)
        except BaseException:
            await managed.child.astop(self.stop_timeout_s)
            raise
        return managed

    async def start_many(
        self, specs: Iterable[ServiceSpec], timeout_s: float | None = None
    ) -> None:
        """Spawn all, then wait for all in parallel; the first failure is raised.

        On failure the services stay registered so that the caller's `stop_all` ends them.
        """
        specs = list(specs)
        for spec in specs:
            self.spawn(spec)
        tasks = [asyncio.create_task(self.wait_ready(s.name, timeout_s)) for s in specs]
        if not tasks:
            return
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error

    async def stop(self, name: str) -> int | None:
        return await self[name].child.astop(self.stop_timeout_s)

    async def kill(self, name: str) -> int:
        """SIGKILL a service's group without starting it again."""
        return await self[name].child.akill()

    async def restart(self, name: str, timeout_s: float | None = None) -> ManagedProcess:
        """kill -9 the service, start it again with the same spec and wait until ready."""
        managed = self[name]
        await managed.child.akill()
        return await self.start(managed.spec, timeout_s)

    async def stop_all(self) -> None:
        """SIGTERM every group at once, wait up to `stop_timeout_s`, SIGKILL the rest."""
        procs = list(self._procs.values())
        results = await asyncio.gather(
            *(p.child.astop(self.stop_timeout_s) for p in procs), return_exceptions=True
        )
        for proc, result in zip(procs, results, strict=True):
            if isinstance(result, BaseException):
                log.error("stopping %s failed: %r", proc.name, result)
                proc.child.signal_group(signal.SIGKILL)


class ChildServer:
    """The lifecycle of infrastructure run as one child process (broker, database, object
    store): stop, kill, `with` and `async with`. A subclass starts it, setting `_child`,
    and says how it stops (`stop_signal`) and what a stopped child leaves to tidy."""

    stop_signal: ClassVar[int] = signal.SIGTERM
    stop_timeout_s: ClassVar[float] = 10.0

    def __init__(self) -> None:
        self._child: ChildProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def start(self) -> None:
        raise NotImplementedError

    async def astart(self) -> None:
        raise NotImplementedError

    def _stopped(self) -> None:
        """Called once the child is gone after a stop."""

    async def astop(self, timeout_s: float | None = None) -> None:
        child, self._child = self._child, None
        if child is not None:
            await child.astop(timeout_s or self.stop_timeout_s, self.stop_signal)
            self._stopped()

    def stop(self, timeout_s: float | None = None) -> None:
        """Blocking `astop`."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(timeout_s or self.stop_timeout_s, self.stop_signal)
            self._stopped()

    async def akill(self) -> None:
        """kill -9: a crash, as far as the server and its clients can tell."""
        child, self._child = self._child, None
        if child is not None:
            await child.akill()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await self.astart()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()
