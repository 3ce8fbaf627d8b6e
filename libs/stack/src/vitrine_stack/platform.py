"""The whole platform on one machine: Tansu, PostgreSQL, topics, and the services.

    async with EmbeddedPlatform(services=["catalog"]) as platform:
        httpx.get(platform.service_url("catalog") + "/readyz")

Everything the platform starts is its child and is stopped on exit, on an exception
part-way through start, and (through PR_SET_PDEATHSIG) when the launcher is killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from vitrine_stack.broker import TansuBroker
from vitrine_stack.postgres import EmbeddedPostgres
from vitrine_stack.seaweed import EmbeddedSeaweedFS
from vitrine_stack.supervisor import ManagedProcess, ServiceSpec, Supervisor, free_port

__all__ = ["DEFAULT_DATA_DIR", "DEFAULT_SERVICES", "EmbeddedPlatform", "PlatformError"]

log = logging.getLogger(__name__)

DEFAULT_SERVICES: tuple[str, ...] = ("catalog", "checkout", "commission", "live", "detector")
DEFAULT_DATA_DIR = Path(".vitrine")
_MARKER = ".vitrine-data"  # `fresh` only wipes directories that carry it


class PlatformError(RuntimeError):
    pass


class EmbeddedPlatform:
    """Starts (in order) broker, database, topics and services; stops them in reverse.

    `bootstrap_servers` / `database_url` (or, with `use_env`, KAFKA_BOOTSTRAP_SERVERS /
    DATABASE_URL from the environment) point at external infrastructure: then no broker or
    database of our own is started. Spawning happens in the thread that calls start
    (PR_SET_PDEATHSIG is tied to it): keep that thread alive while the platform runs.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        services: Sequence[str] | None = None,
        fresh: bool = False,
        bootstrap_servers: str | None = None,
        database_url: str | None = None,
        use_env: bool = True,
        extra_env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        replicas: Mapping[str, int] | None = None,
        log_level: str | None = None,
        log_format: str | None = None,
        create_topics: bool = True,
        broker_port: int | None = None,
        broker_storage: str | None = None,
        postgres_port: int | None = None,
        python: str = sys.executable,
        echo: TextIO | None = None,
        ready_timeout_s: float = 120.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).absolute()
        self.service_names: tuple[str, ...] = tuple(
            DEFAULT_SERVICES if services is None else services
        )
        self.fresh = fresh
        env = os.environ if use_env else {}
        self._external_bootstrap = bootstrap_servers or env.get("KAFKA_BOOTSTRAP_SERVERS") or None
        self._external_database = database_url or env.get("DATABASE_URL") or None
        self.extra_env = dict(extra_env or {})
        self.service_env = {name: dict(v) for name, v in (service_env or {}).items()}
        # Processes per service (default 1), as pods of one Deployment: replica i > 1 runs
        # as `<name>-<i>` with the same SERVICE_NAME (so the same consumer group and
        # schema), its own port and its own Kafka client id suffix.
        self.replicas = {name: max(1, n) for name, n in (replicas or {}).items()}
        self.log_level = log_level or os.environ.get("LOG_LEVEL", "INFO")
        self.log_format = log_format or os.environ.get("LOG_FORMAT", "json")
        self.create_topics = create_topics
        self.broker_port = broker_port
        # "memory" (default): the broker forgets everything when it stops. "s3": Tansu
        # stores topics, messages and committed offsets in an embedded SeaweedFS, so a
        # broker restart loses nothing (the fault-injection test restarts it).
        self.broker_storage = broker_storage or os.environ.get("VITRINE_BROKER_STORAGE", "memory")
        if self.broker_storage not in ("memory", "s3"):
            raise PlatformError(f"broker_storage must be memory or s3, not {self.broker_storage!r}")
        self.postgres_port = postgres_port
        self.python = python
        self.echo = echo
        self.ready_timeout_s = ready_timeout_s

        self.media_root = self.data_dir / "media"
        self.qdrant_path = self.data_dir / "qdrant"
        self.log_dir = self.data_dir / "logs"
        self.pgdata = self.data_dir / "postgres"

        self.broker: TansuBroker | None = None
        self.broker_store: EmbeddedSeaweedFS | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.supervisor = Supervisor(
            self.log_dir, echo=echo, ready_timeout_s=ready_timeout_s, stop_timeout_s=stop_timeout_s
        )
        self.topics_created: list[str] = []
        self.timings: dict[str, float] = {}
        self._state = "new"  # new -> starting -> running -> stopped
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----- addresses -------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        if self._external_bootstrap:
            return self._external_bootstrap
        if self.broker is None:
            raise PlatformError("the platform is not started")
        return self.broker.bootstrap_servers

    @property
    def database_url(self) -> str:
        if self._external_database:
            return self._external_database
        if self.postgres is None:
            raise PlatformError("the platform is not started")
        return self.postgres.database_url

    @property
    def services(self) -> Mapping[str, ManagedProcess]:
        return self.supervisor.processes

    def service_url(self, name: str) -> str:
        url = self.supervisor[name].url
        assert url is not None  # every platform service has a port
        return url

    def log_path(self, name: str) -> Path:
        """The log file of a service, or of "tansu" / "postgres"."""
        return self.supervisor.log_path(name)

    @property
    def running(self) -> bool:
        return self._state == "running"

    # ----- lifecycle -------------------------------------------------------------------

    def _prepare_data_dir(self) -> None:
        marker = self.data_dir / _MARKER
        if self.fresh and self.data_dir.exists():
            if any(self.data_dir.iterdir()) and not marker.exists():
                raise PlatformError(
                    f"refusing to wipe {self.data_dir}: not empty and not a Vitrine data dir "
                    f"(no {_MARKER} file)"
                )
            shutil.rmtree(self.data_dir)
        for path in (self.data_dir, self.media_root, self.qdrant_path, self.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        marker.touch()

    def replica_names(self, name: str) -> list[str]:
        """The process names of a service's replicas: `name`, `name-2`, ..."""
        return [name] + [f"{name}-{i}" for i in range(2, self.replicas.get(name, 1) + 1)]

    def _service_specs(self) -> list[ServiceSpec]:
        return [
            self._service_spec(name, replica)
            for name in self.service_names
            for replica in range(1, self.replicas.get(name, 1) + 1)
        ]

    def _service_spec(self, name: str, replica: int = 1) -> ServiceSpec:
        port = free_port()
        env = dict(os.environ)
        env.update(
            SERVICE_NAME=name,
            HTTP_PORT=str(port),
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap_servers,
            DATABASE_URL=self.database_url,
            MEDIA_ROOT=str(self.media_root),
            QDRANT_PATH=str(self.qdrant_path),  # QDRANT_URL, if set, passes through as is
            LOG_LEVEL=self.log_level,
            LOG_FORMAT=self.log_format,
            PYTHONUNBUFFERED="1",  # log lines reach the log file as they happen
        )
        if replica > 1:
            env["KAFKA_CLIENT_ID_SUFFIX"] = f"-{replica}"
        env.update(self.extra_env)
        env.update(self.service_env.get(name, {}))
        return ServiceSpec(
            name=name if replica == 1 else f"{name}-{replica}",
            argv=[self.python, "-m", f"vitrine_{name}"],
            env=env,
            port=port,
        )

    async def _start_infrastructure(self) -> None:
        async def broker() -> None:
            if self._external_bootstrap:
                return
            started = time.monotonic()
            self.broker = await self._start_broker(self.broker_port)
            self.timings["broker_start_s"] = time.monotonic() - started

        async def postgres() -> None:
            if self._external_database:
                return
            started = time.monotonic()
            self.postgres = EmbeddedPostgres(
                self.pgdata,
                port=self.postgres_port,
                log_path=self.log_path("postgres"),
                echo=self.echo,
            )
            await self.postgres.astart()
            self.timings["postgres_start_s"] = time.monotonic() - started

        async with asyncio.TaskGroup() as group:
            group.create_task(broker())
            group.create_task(postgres())

    async def _start_broker(self, port: int | None) -> TansuBroker:
        storage, env = "memory://tansu/", {}
        if self.broker_storage == "s3":
            if self.broker_store is None:
                self.broker_store = EmbeddedSeaweedFS(
                    self.data_dir / "broker-s3",
                    log_path=self.log_path("broker-s3"),
                    echo=self.echo,
                )
                await self.broker_store.astart()
            storage = "s3://tansu/"
            env = {
                "AWS_ACCESS_KEY_ID": self.broker_store.access_key,
                "AWS_SECRET_ACCESS_KEY": self.broker_store.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT": self.broker_store.s3_endpoint,
                "AWS_ALLOW_HTTP": "true",
            }
        broker = TansuBroker(
            port=port,
            log_path=self.log_path("tansu"),
            echo=self.echo,
            storage_engine=storage,
            env=env,
        )
        await broker.astart()
        return broker

    async def restart_broker(self, *, kill: bool = True) -> None:
        """Stop the embedded broker (kill -9 by default: a crash) and start it again on
        the same port. With "memory" storage it comes back empty and the topics are
        created again; with "s3" it comes back with everything it had acknowledged."""
        if self.broker is None:
            raise PlatformError("no embedded broker to restart")
        port = self.broker.port
        if kill:
            await self.broker.akill()
        else:
            await self.broker.astop()
        self.broker = await self._start_broker(port)
        if self.create_topics:
            from vitrine_runtime.topic_admin import ensure_topics
            from vitrine_schemas.topics import TOPICS

            await ensure_topics(self.bootstrap_servers, TOPICS)

    async def astart(self) -> EmbeddedPlatform:
        if self._state != "new":
            raise PlatformError(f"cannot start a platform that is {self._state}")
        self._state = "starting"
        started = time.monotonic()
        try:
            self._prepare_data_dir()
            try:
                await self._start_infrastructure()
            except BaseExceptionGroup as group:
                # Surface the first real failure rather than a TaskGroup wrapper.
                raise group.exceptions[0] from group
            if self.create_topics:
                from vitrine_runtime.topic_admin import ensure_topics
                from vitrine_schemas.topics import TOPICS

                t0 = time.monotonic()
                self.topics_created = await ensure_topics(self.bootstrap_servers, TOPICS)
                self.timings["topics_s"] = time.monotonic() - t0
            t0 = time.monotonic()
            await self.supervisor.start_many(self._service_specs())
            self.timings["services_s"] = time.monotonic() - t0
        except BaseException:
            try:
                await self._shutdown()
            except Exception:
                log.exception("cleanup after a failed start had errors")
            raise
        self._state = "running"
        self.timings["start_s"] = time.monotonic() - started
        self._write_state_file()
        return self

    async def _shutdown(self) -> None:
        # Services first (they hold connections), then the database, then the broker.
        errors: list[BaseException] = []
        for step in (self.supervisor.stop_all, self._stop_postgres, self._stop_broker):
            try:
                await step()
            except Exception as error:  # keep going: the rest must still be stopped
                log.exception("shutdown step failed")
                errors.append(error)
        self._state = "stopped"
        (self.data_dir / "platform.json").unlink(missing_ok=True)
        if errors:
            raise PlatformError(f"shutdown had errors: {errors!r}")

    async def _stop_postgres(self) -> None:
        if self.postgres is not None:
            await self.postgres.astop()

    async def _stop_broker(self) -> None:
        if self.broker is not None:
            await self.broker.astop()
        if self.broker_store is not None:
            await self.broker_store.astop()

    async def astop(self) -> None:
        if self._state in ("new", "stopped"):
            return
        started = time.monotonic()
        await self._shutdown()
        self.timings["stop_s"] = time.monotonic() - started

    def _write_state_file(self) -> None:
        """`<data>/platform.json`: addresses for tools started in another terminal."""
        state = self.describe()
        (self.data_dir / "platform.json").write_text(json.dumps(state, indent=2) + "\n")

    def describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "data_dir": str(self.data_dir),
            "bootstrap_servers": self.bootstrap_servers,
            "broker": "external"
            if self._external_bootstrap
            else f"embedded Tansu, {'in memory' if self.broker_storage == 'memory' else 'on S3'}",
            "database_url": self.database_url,
            "database": "external" if self._external_database else "embedded PostgreSQL",
            "media_root": str(self.media_root),
            "qdrant_path": str(self.qdrant_path),
            "log_dir": str(self.log_dir),
            "services": {
                name: {"url": p.url, "pid": p.pid, "log": str(p.log_path)}
                for name, p in self.services.items()
            },
        }

    # ----- service control (tests kill and restart services) ---------------------------

    async def restart_service(self, name: str) -> ManagedProcess:
        """kill -9 the service and start it again on the same port; waits until ready."""
        return await self.supervisor.restart(name)

    async def kill_service(self, name: str) -> int:
        """kill -9 the service and leave it down (start it with `start_service`)."""
        return await self.supervisor.kill(name)

    async def start_service(self, name: str) -> ManagedProcess:
        """Start a stopped service again with its previous spec (same port)."""
        return await self.supervisor.start(self.supervisor[name].spec)

    async def stop_service(self, name: str) -> int | None:
        return await self.supervisor.stop(name)

    # ----- context managers and the blocking API (the CLI) -----------------------------

    async def __aenter__(self) -> EmbeddedPlatform:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

    def start(self) -> EmbeddedPlatform:
        """Blocking `astart`, on a private event loop kept for `stop` and `run_sync`."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        try:
            return self._loop.run_until_complete(self.astart())
        except BaseException:
            self._close_loop()
            raise

    def stop(self) -> None:
        """Blocking `astop` (after a blocking `start`)."""
        if self._loop is None:
            return
        try:
            self._loop.run_until_complete(self.astop())
        finally:
            self._close_loop()

    def run_sync(self, coro: Any) -> Any:
        """Run one of the async methods (e.g. `restart_service`) on the private loop."""
        if self._loop is None:
            raise PlatformError("run_sync needs a blocking start first")
        return self._loop.run_until_complete(coro)

    def _close_loop(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()
            self._loop = None

    def __enter__(self) -> EmbeddedPlatform:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
