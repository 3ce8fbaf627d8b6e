"""Consumer lag per topic and partition, read from the broker on a timer.

Lag is measured from the group's committed offsets, not from the messages a consumer
sees: a consumer that is stuck (a handler retrying through an outage, a dead pod) stops
seeing messages, and that is exactly when its lag must keep growing on the dashboard.
Every replica of a service reports the same group's lag; dashboards and alerts take the
max per topic and partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from vitrine_runtime import metrics
from vitrine_runtime.logging import get_logger

__all__ = ["ConsumerLagMonitor", "partition_lag"]

log = get_logger(__name__)


def partition_lag(
    end_offsets: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Messages not yet committed by the group, per partition.

    A partition the group never committed counts from the start of the log (the consumers
    start at the earliest offset), so a new group on a full topic shows its whole backlog.
    """
    return {tp: max(0, end - committed.get(tp, 0)) for tp, end in end_offsets.items()}


class ConsumerLagMonitor:
    """Sets `vitrine_consumer_lag_messages{topic,partition}` every `interval_s` seconds."""

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        *,
        interval_s: float = 15.0,
        client_id: str = "vitrine-lag-monitor",
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.topics = sorted(topics)
        self.interval_s = interval_s
        self.client_id = client_id
        self._reader: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lag-monitor-{self.group_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def _run(self) -> None:
        while True:
            try:
                await self.measure()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away: try again later, never die
                log.warning("consumer_lag_unavailable", error=repr(exc))
                await self._close()
            await asyncio.sleep(self.interval_s)

    async def measure(self) -> dict[TopicPartition, int]:
        """Read the end and committed offsets once, set the gauges, return the lag."""
        reader = await self._client()
        partitions = [
            TopicPartition(topic, partition)
            for topic in self.topics
            for partition in sorted(reader.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await reader.topics()  # refresh metadata; topics may not exist yet
            return {}
        end_offsets = await reader.end_offsets(partitions)
        committed = {}
        for tp in partitions:
            offset = await reader.committed(tp)
            if offset is not None:
                committed[tp] = offset
        lag = partition_lag(end_offsets, committed)
        for tp, messages in lag.items():
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(messages)
        return lag

    async def _client(self) -> AIOKafkaConsumer:
        if self._reader is None:
            # The group's id lets it fetch the group's committed offsets (the same request
            # the members use); it never subscribes, so it never joins the group.
            reader = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                group_id=self.group_id,
                enable_auto_commit=False,
            )
            try:
                await reader.start()
                await reader.topics()
            except BaseException:
                await reader.stop()
                raise
            self._reader = reader
        return self._reader

    async def _close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await reader.stop()
