"""A malformed message on any consumed topic lands on its consumer's dead-letter topic
with a reason, and the consumer goes on with the next message."""

from __future__ import annotations

import uuid

import pytest

from vitrine_schemas.money import Money
from vitrine_stack.client import PlatformClient, Seller, eventually

pytestmark = pytest.mark.e2e

# topic -> the services consuming it
CONSUMED = {
    "objects": ["catalog"],
    "products": ["checkout", "live"],
    "orders": ["commission", "live"],
    "live-sessions": ["checkout"],
}


@pytest.mark.parametrize("topic", sorted(CONSUMED))
async def test_malformed_messages_are_dead_lettered_with_a_reason(
    client: PlatformClient,
    topic: str,
) -> None:
    key = f"poison-{uuid.uuid4().hex[:8]}".encode()
    await client.publish_raw(topic, b'{"this is": "not an envelope"', key=key)
    for service in CONSUMED[topic]:
        records = await client.read_topic(
            f"dlq.{service}", until=lambda rs: any(r.key == key for r in rs), timeout_s=60
        )
        dead = next(r for r in records if r.key == key)
        headers = {k: v.decode() for k, v in dead.headers}
        assert headers["dlq-reason"] == "malformed_envelope"
        assert headers["dlq-source-topic"] == topic
        assert dead.value == b'{"this is": "not an envelope"'


async def test_consumers_keep_going_after_a_poison_message(
    client: PlatformClient,
    seller: Seller,
) -> None:
    await client.publish_raw("products", b"\xff\xfe garbage", key=b"poison")
    await client.publish_raw("orders", b"\xff\xfe garbage", key=b"poison")
    shop = await seller.shop()
    product = await seller.product(shop, price=Money(amount_minor=700, currency="EUR"))
    await seller.sellable(product)  # checkout consumed past the poison
    order = await client.call(
        "checkout",
        "POST",
        "/orders",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "buyer_id": "b",
            "lines": [{"product_id": product["product_id"], "quantity": 1}],
            "attribution": {"source": "none"},
        },
    )

    async def posted() -> object:
        body = await client.call(
            "commission", "GET", "/transactions", params={"order_id": order["order_id"]}
        )
        return body["transactions"] if isinstance(body, dict) else body

    await eventually(posted, what="commission to post past the poison")
