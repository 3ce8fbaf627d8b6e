"""EmbeddedPlatform: infrastructure, services, environment, and a clean stop every time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer
from stack_testing import (
    LineReader,
    make_dummy_package,
    process_tree,
    subprocess_env,
    wait_gone,
)

from vitrine_schemas.topics import TOPICS
from vitrine_stack.broker import TansuBroker
from vitrine_stack.platform import EmbeddedPlatform, PlatformError
from vitrine_stack.supervisor import ServiceFailed


def infrastructure(platform: EmbeddedPlatform) -> list[psutil.Process]:
    assert platform.broker is not None
    assert platform.postgres is not None
    assert platform.broker.pid is not None
    assert platform.postgres.pid is not None
    return [psutil.Process(platform.broker.pid), *process_tree(platform.postgres.pid)]


async def test_no_services_starts_and_stops_broker_and_postgres(tmp_path: Path) -> None:
    platform = EmbeddedPlatform(tmp_path / "data", services=[], use_env=False)
    async with platform:
        procs = infrastructure(platform)
        assert platform.services == {}
        conn = await asyncpg.connect(platform.database_url)
        assert await conn.fetchval("select current_database()") == "vitrine"
        await conn.close()
        consumer = AIOKafkaConsumer(bootstrap_servers=platform.bootstrap_servers)
        await consumer.start()
        try:
            assert await consumer.topics() >= {t.name for t in TOPICS}
            for topic in TOPICS:
                assert len(consumer.partitions_for_topic(topic.name) or ()) == topic.partitions
        finally:
            await consumer.stop()
        assert sorted(platform.topics_created) == sorted(t.name for t in TOPICS)
        for path in (platform.media_root, platform.qdrant_path, platform.log_dir):
            assert path.is_dir()
        state = json.loads((platform.data_dir / "platform.json").read_text())
        assert state["database_url"] == platform.database_url
    assert wait_gone(procs, 10) == []
    assert not (platform.data_dir / "platform.json").exists()
    assert platform.log_path("postgres").exists()
    assert platform.log_path("tansu").exists()


async def test_services_get_their_environment_and_can_be_restarted(tmp_path: Path) -> None:
    packages = make_dummy_package(tmp_path)
    platform = EmbeddedPlatform(
        tmp_path / "data",
        services=["dummy"],
        use_env=False,
        extra_env={"PYTHONPATH": os.pathsep.join([str(packages), *sys.path])},
        service_env={"dummy": {"ONLY_FOR_DUMMY": "yes"}},
        log_level="DEBUG",
    )
    async with platform:
        url = platform.service_url("dummy")
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            env = (await client.get("/env")).json()
            assert env["SERVICE_NAME"] == "dummy"
            assert url.endswith(f":{env['HTTP_PORT']}")
            assert env["KAFKA_BOOTSTRAP_SERVERS"] == platform.bootstrap_servers
            assert env["DATABASE_URL"] == platform.database_url
            assert env["MEDIA_ROOT"] == str(platform.media_root)
            assert env["QDRANT_PATH"] == str(platform.qdrant_path)
            assert env["LOG_LEVEL"] == "DEBUG"
            assert env["LOG_FORMAT"]
            assert env["ONLY_FOR_DUMMY"] == "yes"

            old_pid = platform.services["dummy"].pid
            restarted = await platform.restart_service("dummy")
            assert restarted.pid != old_pid
            assert (await client.get("/readyz")).status_code == 200
        procs = [psutil.Process(restarted.pid), *infrastructure(platform)]
        assert "dummy listening" in platform.log_path("dummy").read_text()
    assert wait_gone(procs, 10) == []


async def test_failed_service_start_leaves_nothing_running(tmp_path: Path) -> None:
    packages = make_dummy_package(tmp_path)
    platform = EmbeddedPlatform(
        tmp_path / "data",
        services=["dummy"],
        use_env=False,
        extra_env={"PYTHONPATH": str(packages), "DUMMY_MODE": "exit"},
    )
    seen: list[psutil.Process] = []
    original = platform.supervisor.start_many

    async def spy(*args: object, **kwargs: object) -> None:
        seen.extend(infrastructure(platform))
        await original(*args, **kwargs)  # type: ignore[arg-type]

    platform.supervisor.start_many = spy  # type: ignore[method-assign]
    with pytest.raises(ServiceFailed, match="dummy"):
        await platform.astart()
    assert seen
    assert wait_gone(seen, 10) == []
    assert not platform.running


async def test_external_infrastructure_is_used_not_started(tmp_path: Path) -> None:
    async with TansuBroker() as broker:
        platform = EmbeddedPlatform(
            tmp_path / "data",
            services=[],
            bootstrap_servers=broker.bootstrap_servers,
            database_url="postgresql://nobody@127.0.0.1:1/none",
        )
        async with platform:
            assert platform.broker is None
            assert platform.postgres is None
            assert platform.bootstrap_servers == broker.bootstrap_servers
            assert platform.database_url.endswith("/none")
            assert len(platform.topics_created) == len(TOPICS)


def test_replicas_share_the_service_name_with_their_own_port_and_client_id(
    tmp_path: Path,
) -> None:
    platform = EmbeddedPlatform(
        tmp_path / "data",
        services=["checkout", "commission"],
        use_env=False,
        bootstrap_servers="127.0.0.1:1",
        database_url="postgresql://x@127.0.0.1:1/x",
        replicas={"commission": 3},
    )
    specs = {spec.name: spec for spec in platform._service_specs()}
    assert sorted(specs) == ["checkout", "commission", "commission-2", "commission-3"]
    assert platform.replica_names("commission") == ["commission", "commission-2", "commission-3"]
    assert platform.replica_names("checkout") == ["checkout"]
    for name in platform.replica_names("commission"):
        assert specs[name].env["SERVICE_NAME"] == "commission"  # one consumer group
        assert specs[name].argv[-1] == "vitrine_commission"
    assert specs["commission-2"].env["KAFKA_CLIENT_ID_SUFFIX"] == "-2"
    assert "KAFKA_CLIENT_ID_SUFFIX" not in specs["commission"].env
    assert len({spec.port for spec in specs.values()}) == 4


def test_fresh_wipes_only_vitrine_data_dirs(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    platform = EmbeddedPlatform(foreign, services=[], fresh=True, use_env=False)
    with pytest.raises(PlatformError, match="refusing to wipe"):
        platform.start()
    assert (foreign / "precious.txt").exists()

    ours = tmp_path / "ours"
    with EmbeddedPlatform(ours, services=[], use_env=False, create_topics=False):
        (ours / "media" / "old.jpg").write_text("x")
    with EmbeddedPlatform(ours, services=[], fresh=True, use_env=False, create_topics=False):
        assert not (ours / "media" / "old.jpg").exists()


LAUNCHER = textwrap.dedent(
    """
    import json, sys, time
    from vitrine_stack.platform import EmbeddedPlatform

    platform = EmbeddedPlatform(sys.argv[1], services=["dummy"], use_env=False)
    platform.start()
    print("READY", json.dumps({
        "broker": platform.broker.pid,
        "postgres": platform.postgres.pid,
        "dummy": platform.services["dummy"].pid,
    }), flush=True)
    time.sleep(600)
    """
)


def test_nothing_survives_a_sigkilled_launcher(tmp_path: Path) -> None:
    packages = make_dummy_package(tmp_path)
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path / "data")],
        env=subprocess_env(packages),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        pids = json.loads(LineReader(launcher).wait_for("READY", timeout_s=90))
        procs = [
            psutil.Process(pids["broker"]),
            psutil.Process(pids["dummy"]),
            *process_tree(pids["postgres"]),
        ]
        launcher.kill()
        launcher.wait(5)
        left = wait_gone(procs, 10)
        assert left == [], f"outlived the launcher: {[p.info for p in left]}"
    finally:
        launcher.kill()
        launcher.wait()
