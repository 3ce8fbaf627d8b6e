"""Composition root shared by every service: broker, database, outbox relay, consumer, HTTP.

A service builds one `ServiceRuntime`, registers its event handlers on `runtime.consumer`,
adds its HTTP routers and calls `runtime.serve()`. Start and stop order is fixed here so
that no service gets it wrong: the database and its migrations first, then the consumer
and relay; on shutdown, stop taking messages before closing the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Union
from urllib.parse import quote

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from vitrine_runtime import tracing
from vitrine_runtime.consumer import EventConsumer
from vitrine_runtime.db import Database
from vitrine_runtime.http import install_common_routes
from vitrine_runtime.lag import ConsumerLagMonitor
from vitrine_runtime.logging import configure_logging, get_logger
from vitrine_runtime.outbox import OutboxRelay
from vitrine_runtime.settings import ServiceSettings
from vitrine_schemas.envelope import Envelope, Event

log = get_logger(__name__)

Hook = Callable[["ServiceRuntime"], Awaitable[None]]


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations: str | None = None,
        produces: Sequence[type[Event]] = (),
        version: str = "0.1.0",
        description: str = "",
        consumer_batch_size: int = 1,
    ) -> None:
        """`consumer_batch_size` > 1 applies up to that many polled events in one
        transaction (see `EventConsumer`): for services whose handlers are quick."""
        self.settings = settings
        self.name = settings.service_name
        self.version = version
        self.description = description
        self._migrations = migrations
        self._produces = produces
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            acks="all",
            client_id=f"vitrine-{self.name}{settings.kafka_client_id_suffix}",
            linger_ms=5,
            logger=None,  # our consumer logs each outcome as JSON; FastStream's lines are not
        )
        self.consumer = EventConsumer(
            self.name,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff_s=settings.consumer_retry_backoff_s,
            batch_size=consumer_batch_size,
        )
        self._db: Database | None = None
        self._relay_producer: AIOKafkaProducer | None = None
        self.relay: OutboxRelay | None = None
        self._lag: ConsumerLagMonitor | None = None
        self._on_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._started = False
        self._document_publishers()

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._db

    def on_start(self, hook: Hook) -> Hook:
        self._on_start.append(hook)
        return hook

    def on_stop(self, hook: Hook) -> Hook:
        self._on_stop.append(hook)
        return hook

    async def start(self) -> None:
        self._db = await Database.connect(
            self.settings.database_url,
            self.settings.schema_name,
            pool_size=self.settings.database_pool_size,
        )
        await self._db.migrate(*([self._migrations] if self._migrations else []))
        for hook in self._on_start:
            await hook(self)
        self.consumer.bind(self._db, self._publish_confirmed)
        self.consumer.attach(self.broker)
        await self.broker.start()
        # The relay sends through its own aiokafka producer: FastStream's publish path
        # (a command object, middlewares, an id per message) cost more Python per event
        # than the send itself, and the relay only forwards bytes that are ready.
        self._relay_producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            acks="all",
            linger_ms=5,
            client_id=f"vitrine-{self.name}-relay{self.settings.kafka_client_id_suffix}",
        )
        await self._relay_producer.start()
        self.relay = OutboxRelay(
            self._db,
            self._publish,
            batch_size=self.settings.outbox_batch_size,
            poll_interval_s=self.settings.outbox_poll_interval_s,
        )
        await self.relay.start()
        if self.consumer.topics:
            # The group's lag read from the broker, so a stuck consumer still shows up.
            self._lag = ConsumerLagMonitor(
                self.settings.kafka_bootstrap_servers,
                self.consumer.group_id,
                self.consumer.topics,
                client_id=f"vitrine-{self.name}-lag{self.settings.kafka_client_id_suffix}",
            )
            await self._lag.start()
        self._started = True
        _settle_garbage_collector()
        log.info("service_started", consumes=self.consumer.event_types)

    async def stop(self) -> None:
        self._started = False
        if self._lag is not None:
            with contextlib.suppress(Exception):
                await self._lag.stop()
        if self.relay:
            await self.relay.stop()
        if self._relay_producer is not None:
            with contextlib.suppress(Exception):
                await self._relay_producer.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        for hook in reversed(self._on_stop):
            with contextlib.suppress(Exception):
                await hook(self)
        if self._db:
            await self._db.close()
        log.info("service_stopped")

    async def readiness(self) -> dict[str, bool]:
        if not self._started or self._db is None:
            return {"started": False}
        database, broker = await asyncio.gather(self._db.ping(), self._broker_ping())
        return {"started": True, "database": database, "broker": broker}

    async def _broker_ping(self) -> bool:
        try:
            return bool(await self.broker.ping(timeout=2.0))
        except Exception:
            return False

    # --- events -------------------------------------------------------------------------

    def envelope(self, data: Event) -> Envelope[Event]:
        """Wrap a payload, carrying the current flow's correlation id."""
        return Envelope.wrap(
            data, producer=self.name, correlation_id=tracing.current_correlation_id()
        )

    async def _publish(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> Awaitable[object]:
        assert self._relay_producer is not None, "the relay publishes only once started"
        sent: Awaitable[object] = await self._relay_producer.send(
            topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()]
        )
        return sent

    async def _publish_confirmed(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        await self.broker.publish(value, topic, key=key, headers=headers)

    def _document_publishers(self) -> None:
        # Publishers exist for the AsyncAPI document: what this service emits, with schemas.
        by_topic: dict[str, list[type[Event]]] = {}
        for event_cls in self._produces:
            by_topic.setdefault(event_cls.topic, []).append(event_cls)
        for topic, classes in sorted(by_topic.items()):
            payload: Any = classes[0] if len(classes) == 1 else Union[tuple(classes)]  # noqa: UP007
            self.broker.publisher(
                topic,
                schema=Envelope[payload],
                title=f"{self.name}:emits:{topic}",
                description="emits: " + ", ".join(c.event_type for c in classes),
            )

    def asyncapi(self) -> dict[str, Any]:
        self.consumer.attach(self.broker)
        spec = AsyncAPI(
            self.broker,
            title=f"vitrine-{self.name}",
            version=self.version,
            description=self.description,
        )
        document: dict[str, Any] = spec.to_specification().to_jsonable()
        self._document_consumed_events(document)
        return document

    def _document_consumed_events(self, document: dict[str, Any]) -> None:
        # The subscriber takes raw messages (to dead-letter what does not decode), so
        # FastStream cannot see their schema: name the consumed envelopes here.
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        refs = []
        for event_cls in self.consumer.event_classes:
            schema = Envelope[event_cls].model_json_schema(  # type: ignore[valid-type]
                ref_template="#/components/schemas/{model}"
            )
            schemas.update(schema.pop("$defs", {}))
            schemas[schema["title"]] = schema
            refs.append({"$ref": f"#/components/schemas/{quote(schema['title'])}"})
        for name, message in components.get("messages", {}).items():
            if name == f"{self.name}:SubscribeMessage" and refs:
                message["payload"] = {"oneOf": refs}
        schemas.pop("EmptyPayload", None)

    # --- HTTP ---------------------------------------------------------------------------

    def create_app(self, routers: Sequence[APIRouter] = ()) -> FastAPI:
        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = FastAPI(
            title=f"Vitrine {self.name}",
            version=self.version,
            description=self.description,
            lifespan=lifespan,
        )
        install_common_routes(app, self.readiness)
        for router in routers:
            app.include_router(router)
        app.state.runtime = self
        return app

    def serve(self, app: FastAPI) -> None:
        configure_logging(self.name, self.settings.log_level, self.settings.log_format)
        uvicorn.run(
            app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )


def _settle_garbage_collector() -> None:
    """Freeze what start-up allocated (modules, models, pools): it lives as long as the
    process, and the collector's full passes no longer walk it. In `make bench-ledger`
    the collector took a quarter of commission's CPU before, an eighth after."""
    gc.collect()
    gc.freeze()
