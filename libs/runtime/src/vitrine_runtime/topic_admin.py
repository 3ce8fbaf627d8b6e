"""Create the registry's topics on a Kafka-compatible broker, idempotently.

Services must not rely on broker auto-creation: auto-created topics get one partition
and default retention. This runs at platform start and as a Kubernetes init job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from vitrine_schemas.topics import Topic

__all__ = ["ensure_topics", "topic_configs"]

log = logging.getLogger(__name__)

# Brokers answer these while electing a controller or warming up: try again.
_RETRIABLE = {
    5,  # LEADER_NOT_AVAILABLE
    7,  # REQUEST_TIMED_OUT
    14,  # COORDINATOR_LOAD_IN_PROGRESS
    15,  # COORDINATOR_NOT_AVAILABLE
    41,  # NOT_CONTROLLER
}
# Answers that may mean "this broker does not take one of the configs": create the topic
# without them rather than not at all.
_CONFIG_REJECTED = {
    -1,  # UNKNOWN_SERVER_ERROR, what minimal brokers answer to anything unexpected
    35,  # UNSUPPORTED_VERSION
    40,  # INVALID_CONFIG
    42,  # INVALID_REQUEST
    44,  # POLICY_VIOLATION
}


def topic_configs(topic: Topic) -> dict[str, str]:
    return {"retention.ms": str(topic.retention_ms), "cleanup.policy": topic.cleanup_policy}


async def _connect(bootstrap_servers: str, errors: list[BaseException]) -> AIOKafkaAdminClient:
    """Retry until connected; the caller's timeout ends the attempts."""
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            client_id="vitrine-topic-admin",
            request_timeout_ms=10_000,
        )
        try:
            await admin.start()
            return admin
        except KafkaError as error:
            await admin.close()
            errors.append(error)
            log.info("kafka at %s not reachable yet (%s); retrying", bootstrap_servers, error)
            await asyncio.sleep(0.5)


async def _warn_partition_mismatch(
    admin: AIOKafkaAdminClient, topics: Sequence[Topic], existing: set[str]
) -> None:
    names = [t.name for t in topics if t.name in existing]
    if not names:
        return
    wanted = {t.name: t.partitions for t in topics}
    for described in await admin.describe_topics(names):
        have = len(described["partitions"])
        if have != wanted[described["topic"]]:
            # Left alone on purpose: changing partitions moves keys between them.
            log.warning(
                "topic %s exists with %d partitions; the registry says %d",
                described["topic"], have, wanted[described["topic"]],
            )  # fmt: skip


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[Topic],
    *,
    timeout_s: float = 30,
    replication_factor: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Existing topics are left as they are (a differing partition count is logged). If the
    broker rejects a topic's configs (retention.ms, cleanup.policy), the topic is created
    without them and the skipped configs are logged. Connection is retried until
    `timeout_s`; after that TimeoutError is raised.
    """
    deadline = time.monotonic() + timeout_s
    errors: list[BaseException] = []
    try:
        async with asyncio.timeout(timeout_s):
            admin = await _connect(bootstrap_servers, errors)
            errors.clear()  # reached it: a timeout from here on is about creating
            try:
                return await _create_missing(admin, topics, replication_factor, deadline)
            finally:
                await admin.close()
    except TimeoutError as timeout:
        where = f"{bootstrap_servers} in {timeout_s}s"
        if errors:
            raise TimeoutError(f"cannot reach Kafka at {where}: {errors[-1]}") from timeout
        raise TimeoutError(f"topics not ensured on {where}") from timeout


async def _create_missing(
    admin: AIOKafkaAdminClient,
    topics: Sequence[Topic],
    replication_factor: int,
    deadline: float,
) -> list[str]:
    existing = set(await admin.list_topics())
    await _warn_partition_mismatch(admin, topics, existing)
    pending = {t.name: (t, topic_configs(t)) for t in topics if t.name not in existing}
    created: list[str] = []
    while pending:
        request = [
            NewTopic(t.name, t.partitions, replication_factor, topic_configs=configs)
            for t, configs in pending.values()
        ]
        timeout_ms = int(max(1.0, min(deadline - time.monotonic(), 10.0)) * 1000)
        response = await admin.create_topics(request, timeout_ms=timeout_ms)
        retry = False
        for result in response.topic_errors:
            # v0 answers (name, code); later versions add a message.
            name, code = result[0], result[1]
            message = result[2] if len(result) > 2 else None
            topic, configs = pending[name]
            if code == 0:
                created.append(name)
                del pending[name]
            elif code == TopicAlreadyExistsError.errno:
                del pending[name]  # created meanwhile by someone else
            elif code in _CONFIG_REJECTED and configs:
                log.warning(
                    "broker rejected configs %s for topic %s (error %d: %s); creating it "
                    "without them", configs, name, code, message,
                )  # fmt: skip
                pending[name] = (topic, {})
                retry = True
            elif code in _RETRIABLE:
                retry = True
            else:
                raise for_code(code)(f"cannot create topic {name}: {message}")
        if pending and retry:
            await asyncio.sleep(0.2)
    if created:
        log.info("created topics: %s", ", ".join(created))
    return created
