"""A small client of a running platform, for the demo and the cross-service tests:
HTTP calls to each service, raw publishing to topics, reading a topic back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.money import Money
from vitrine_stack.samples import SampleProduct, studio_images

T = TypeVar("T")


class PlatformClient:
    def __init__(self, service_urls: Mapping[str, str], bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.http = {
            name: httpx.AsyncClient(base_url=url, timeout=30.0)
            for name, url in service_urls.items()
        }
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> PlatformClient:
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
        await self._producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._producer:
            await self._producer.stop()
        await asyncio.gather(*(client.aclose() for client in self.http.values()))

    def __getitem__(self, service: str) -> httpx.AsyncClient:
        return self.http[service]

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        expect: int | tuple[int, ...] = (200, 201),
        **kwargs: Any,
    ) -> Any:
        """One HTTP call; fails loudly with the service's own message on an unexpected status."""
        response = await self.http[service].request(method, path, **kwargs)
        expected = (expect,) if isinstance(expect, int) else expect
        if response.status_code not in expected:
            raise AssertionError(
                f"{service} {method} {path} -> {response.status_code}: {response.text}"
            )
        return response.json() if response.content else None

    async def publish(self, envelope: Envelope[Event]) -> None:
        assert self._producer, "use the client as an async context manager"
        await self._producer.send_and_wait(
            envelope.data.topic,
            envelope.to_bytes(),
            key=envelope.partition_key.encode(),
            headers=[(k, v.encode()) for k, v in envelope.headers().items()],
        )

    async def publish_raw(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        assert self._producer, "use the client as an async context manager"
        await self._producer.send_and_wait(
            topic,
            value,
            key=key,
            headers=[(k, v.encode()) for k, v in (headers or {}).items()],
        )

    async def read_topic(
        self,
        topic: str,
        until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
        timeout_s: float = 30.0,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Read a topic from the start (no group) until `until(records)` holds."""
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            client_id=f"vitrine-reader-{uuid.uuid4().hex[:8]}",
        )
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            deadline = time.monotonic() + timeout_s
            while not until(records):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}: condition not met after {timeout_s}s")
                batch = await consumer.getmany(timeout_ms=500)
                for partition_records in batch.values():
                    records.extend(partition_records)
        finally:
            await consumer.stop()
        return records


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout_s: float = 60.0,
    every_s: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll until `probe` returns something truthy; the platform is eventually consistent."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = await probe()
            if result:
                return result
        except (AssertionError, httpx.HTTPError) as exc:
            last_error = exc
        await asyncio.sleep(every_s)
    raise TimeoutError(
        f"{what} not reached in {timeout_s}s" + (f": {last_error}" if last_error else "")
    )


class Seller:
    """Creates shops and products through the catalog API, as a seller would."""

    def __init__(self, client: PlatformClient) -> None:
        self.client = client

    async def shop(self, kind: str = "third_party") -> dict[str, Any]:
        seller_id = f"seller-{uuid.uuid4().hex[:6]}"
        shop: dict[str, Any] = await self.client.call(
            "catalog",
            "POST",
            "/shops",
            json={"name": f"Shop {seller_id}", "kind": kind, "seller_id": seller_id},
        )
        return shop

    async def product(
        self,
        shop: dict[str, Any],
        *,
        price: Money,
        stock: int = 10,
        commission_bps: int = 1000,
        sample: SampleProduct | None = None,
        title: str | None = None,
    ) -> dict[str, Any]:
        product: dict[str, Any] = await self.client.call(
            "catalog",
            "POST",
            f"/shops/{shop['shop_id']}/products",
            json={
                "title": title or (sample.title if sample else "Plain product"),
                "price": price.model_dump(),
                "stock": stock,
                "commission_bps": commission_bps,
            },
        )
        if sample is not None:
            for image in studio_images(sample):
                await self.client.call(
                    "catalog",
                    "POST",
                    f"/products/{product['product_id']}/images",
                    content=image,
                    headers={"Content-Type": "image/jpeg"},
                )
        return product

    async def sellable(self, product: dict[str, Any]) -> dict[str, Any]:
        """Wait until checkout has the product from the catalog's events."""
        return await eventually(  # type: ignore[no-any-return]
            lambda: self.client.call("checkout", "GET", f"/products/{product['product_id']}"),
            what=f"checkout to list {product['product_id']}",
        )
