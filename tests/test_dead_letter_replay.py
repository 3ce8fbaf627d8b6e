"""Dead letters replayed after a fix post exactly once: `python -m vitrine_stack dlq`.

A refund that reaches commission before its order (the order's event was lost upstream)
is rejected and parked in dlq.commission. Once the order is published (the fix), the
operator replays the refund with the CLI: commission books it; replaying it again is
absorbed by the consumer's inbox, and `replay --all` no longer offers it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    OrderLine,
    OrderPlaced,
    OrderRefunded,
    ShopKind,
)
from vitrine_schemas.money import Money
from vitrine_stack.client import PlatformClient, eventually
from vitrine_stack.platform import EmbeddedPlatform

pytestmark = pytest.mark.e2e


def dlq(platform: EmbeddedPlatform, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator's command, as a separate process against the running platform."""
    return subprocess.run(
        [sys.executable, "-m", "vitrine_stack", "dlq", *args],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": platform.bootstrap_servers},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def listed(platform: EmbeddedPlatform, *args: str) -> list[dict[str, Any]]:
    result = dlq(platform, "list", "commission", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def transactions(client: PlatformClient, order_id: str) -> list[dict[str, Any]]:
    body = await client.call("commission", "GET", "/transactions", params={"order_id": order_id})
    return list(body["transactions"])


async def duplicates_skipped(client: PlatformClient) -> float:
    text = (await client["commission"].get("/metrics")).text
    pattern = (
        r'^vitrine_events_consumed_total\{event_type="order\.refunded",'
        r'outcome="duplicate",topic="orders"\} (\S+)$'
    )
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def order_events(order_id: str) -> tuple[Envelope[OrderPlaced], Envelope[OrderRefunded]]:
    now = datetime.now(UTC)
    total = Money(amount_minor=5000, currency="EUR")
    placed = OrderPlaced(
        order_id=order_id,
        buyer_id="buyer-dlq",
        shop_id="shop-dlq",
        seller_id="seller-dlq",
        shop_kind=ShopKind.THIRD_PARTY,
        lines=[
            OrderLine(
                product_id="p-dlq", title="t", quantity=1, unit_price=total, commission_bps=1000
            )
        ],
        total=total,
        platform_fee_bps=500,
        attribution=Attribution(
            source=AttributionSource.CREATOR_TAGGED, creator_id="creator-dlq", video_id="v"
        ),
        placed_at=now,
    )
    refunded = OrderRefunded(
        order_id=order_id,
        refund_id=f"r-{order_id}",
        amount=Money(amount_minor=2000, currency="EUR"),
        refunded_total=Money(amount_minor=2000, currency="EUR"),
        order_total=total,
        refunded_at=now,
    )
    return Envelope.wrap(placed, producer="checkout"), Envelope.wrap(refunded, producer="checkout")


async def test_a_rejected_refund_replayed_after_the_fix_posts_exactly_once(
    platform: EmbeddedPlatform, client: PlatformClient
) -> None:
    order_id = f"o-dlq-{uuid.uuid4().hex[:10]}"
    placed, refunded = order_events(order_id)

    # The refund arrives first: its order was never booked, so commission rejects it.
    await client.publish(refunded)

    async def parked() -> dict[str, Any] | None:
        mine = [r for r in listed(platform) if r["key"] == order_id]
        return mine[0] if mine else None

    dead = await eventually(parked, timeout_s=90, every_s=1.0, what="the refund's dead letter")
    assert dead["reason"] == "rejected"
    assert "never booked" in dead["detail"]
    assert dead["event_type"] == "order.refunded"
    assert dead["source"].startswith("orders/")
    assert dead["replayed_at"] is None
    ref = f"{dead['partition']}:{dead['offset']}"

    shown = await asyncio.to_thread(dlq, platform, "show", "commission", ref)
    assert shown.returncode == 0, shown.stderr
    assert "dlq-reason: rejected" in shown.stdout
    assert str(refunded.event_id) in shown.stdout  # headers and body of the original

    # The fix: the order is published. Commission books the sale, not the refund.
    await client.publish(placed)
    await eventually(
        lambda: transactions(client, order_id), timeout_s=60, what="the sale to be booked"
    )
    assert [t["kind"] for t in await transactions(client, order_id)] == ["sale"]

    replayed = await asyncio.to_thread(dlq, platform, "replay", "commission", "--offset", ref)
    assert replayed.returncode == 0, replayed.stderr
    assert "1 replayed" in replayed.stdout

    async def booked() -> list[dict[str, Any]] | None:
        found = await transactions(client, order_id)
        return found if len(found) == 2 else None

    [sale, refund] = await eventually(booked, timeout_s=60, what="the replayed refund to post")
    assert (refund["kind"], refund["refund_id"], refund["amount_minor"]) == (
        "refund",
        refunded.data.refund_id,
        2000,
    )
    assert refund["event_id"] == str(refunded.event_id)  # the original event, replayed
    assert refund["creator_commission_minor"] == sale["creator_commission_minor"] * 2 // 5

    # Remembered: listed as replayed, and `replay --all` does not send it again.
    [mine] = [r for r in listed(platform) if r["key"] == order_id]
    assert mine["replayed_at"] is not None
    assert all(r["key"] != order_id for r in listed(platform, "--pending"))
    again = await asyncio.to_thread(
        dlq, platform, "replay", "commission", "--all", "--reason", "rejected", "--dry-run"
    )
    assert again.returncode == 0, again.stderr
    assert f"would replay {ref} " not in again.stdout
    assert f"skipped {ref}: replayed" in again.stdout

    # Replayed twice anyway (--force): the inbox skips the duplicate, nothing books twice.
    before = await duplicates_skipped(client)
    forced = await asyncio.to_thread(
        dlq, platform, "replay", "commission", "--offset", ref, "--force"
    )
    assert forced.returncode == 0, forced.stderr

    async def skipped() -> bool:
        return await duplicates_skipped(client) > before

    await eventually(skipped, timeout_s=60, what="commission to skip the second replay")
    assert len(await transactions(client, order_id)) == 2
    trial = await client.call("commission", "GET", "/ledger/trial-balance")
    assert trial["balanced"] is True
