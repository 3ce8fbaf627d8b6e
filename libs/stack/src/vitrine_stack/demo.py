"""`make demo`: the whole commerce path on the embedded platform, from upload to ledger.

1. start the platform (Kafka-protocol broker, PostgreSQL, embedded Qdrant, and the
   detector, catalog, checkout, commission and live services);
2. list a ShopBench catalog (made from a seed, with look-alike products) through the
   catalog API: shops, products, studio images;
3. upload ShopBench videos the way the upload service would (media store, then
   `video.uploaded`): the detector decodes, samples, detects and tracks; the catalog
   matches every tracked object; the tags are shown beside what the video really shows.
   One creator has "identify similar products" off: nothing is tagged until it is on;
4. buy through the video's tags, through a live session and from the platform's shop;
5. refund one order in part and one in full;
6. print the ledger, check every transaction sums to zero and every balance is exactly
   what the split rules give; then stop the platform.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from vitrine_runtime.media import LocalMediaStore
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import VideoConsentChanged
from vitrine_schemas.money import Money, prorate, split
from vitrine_stack import shopbench
from vitrine_stack.client import PlatformClient, Seller, eventually
from vitrine_stack.platform import DEFAULT_DATA_DIR, EmbeddedPlatform

CREATOR_VIDEO = "creator-ana"
CREATOR_SHY = "creator-noor"  # uploads with "identify similar products" off
CREATOR_LIVE = "creator-ben"
BUYER = "buyer-kim"
DATASET = DEFAULT_DATA_DIR / "shopbench" / "seed-7-small"
SEED = 7
SCALE = "small"  # 2 shops, 9 products, three 5 s clips: made in about 15 s


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text}")


async def seed_catalog(client: PlatformClient, root: Path) -> shopbench.ListedCatalog:
    heading(f"Listing the ShopBench catalog (seed {SEED}, {SCALE}) through the catalog API")
    listed = await shopbench.list_catalog(client, root)
    for bench_id, product in listed.products.items():
        price = Money.model_validate(product["price"])
        say(
            f"  {product['shop']['name']:<14} {product['title']:<36} {price!s:>12}"
            f"  commission {product['commission_bps'] / 100:.0f} %  ({bench_id})"
        )
    say(f"  {len(listed.products)} products, {listed.images} studio images, look-alikes included")
    return listed


async def make_shoppable(
    client: PlatformClient, media: LocalMediaStore, root: Path, listed: shopbench.ListedCatalog
) -> dict[str, list[dict[str, Any]]]:
    """Upload the clips; returns each video's tags."""
    truths = {**shopbench.truths(root, "test"), **shopbench.truths(root, "val")}
    uploads = [
        (f"vid-{video_id}-{uuid.uuid4().hex[:6]}", truth, creator)
        for (video_id, truth), creator in zip(
            sorted(truths.items()), [CREATOR_VIDEO, CREATOR_SHY], strict=True
        )
    ]
    tags: dict[str, list[dict[str, Any]]] = {}
    for video_id, truth, creator in uploads:
        consent = creator != CREATOR_SHY
        heading(
            f"{creator} uploads {video_id} ({truth['width']}x{truth['height']} {truth['codec']},"
            f" {truth['duration_ms'] / 1000:.0f} s), identify similar products:"
            f" {'on' if consent else 'off'}"
        )
        uploaded = await shopbench.upload(
            client, media, root / truth["file"], video_id, creator, identify_products=consent
        )
        tags[video_id] = await _show(client, video_id, truth, listed)
        if not consent:
            say(f"  {creator} switches identify similar products on")
            await client.publish(
                Envelope.wrap(
                    VideoConsentChanged(
                        video_id=video_id,
                        creator_id=creator,
                        media_uri=uploaded.media_uri,
                        identify_products=True,
                    ),
                    producer="upload-service",
                )
            )
            await eventually(
                functools.partial(_processed, client, video_id), timeout_s=120, what="reprocessing"
            )
            tags[video_id] = await _show(client, video_id, truth, listed)
    return tags


async def _processed(client: PlatformClient, video_id: str) -> bool:
    body = await client.call("detector", "GET", f"/videos/{video_id}")
    return bool(body["outcome"] == "processed")


async def _show(
    client: PlatformClient,
    video_id: str,
    truth: dict[str, Any],
    listed: shopbench.ListedCatalog,
) -> list[dict[str, Any]]:
    record = await shopbench.outcome(client, video_id)
    if record["outcome"] != "processed":
        say(f"  detector: {record['outcome']} (no consent: nothing is looked at, nothing tagged)")
        return []
    judged = await shopbench.judged_tracks(client, video_id, record["track_count"])
    say(
        f"  detector: {record['track_count']} tracked objects in {record['processing_s']:.1f} s"
        f" ({record['frames_sampled']} of {record['frames_decoded']} decoded frames looked at)"
    )
    tags = await shopbench.tags(client, video_id)
    tagged = {t["track_id"]: t for t in tags}
    for track in judged:
        span = f"{track['first_seen_ms'] / 1000:4.1f}-{track['last_seen_ms'] / 1000:4.1f} s"
        tag = tagged.get(track["track_id"])
        confidence = track.get("match_confidence")
        sure = f", confidence {confidence:.2f}" if confidence is not None else ""
        if tag:
            bench_id = listed.bench_id(tag["product_id"])
            say(f"  [{span}] tag: {tag['title']} ({bench_id}), score {tag['score']:.2f}{sure}")
        else:
            best = track["best_score"] or 0
            say(f"  [{span}] no tag: nothing convincing (best score {best:.2f}{sure})")
    shown = [p["product_id"] for p in truth["products"]]
    found = {listed.bench_id(t["product_id"]) for t in tags}
    say(
        f"  the video shows {', '.join(shown)} (ground truth); tagged {len(found & set(shown))}"
        f" of them, {len(found - set(shown))} wrong"
    )
    return tags


async def buy(
    client: PlatformClient, product: dict[str, Any], quantity: int, attribution: dict[str, Any]
) -> dict[str, Any]:
    order: dict[str, Any] = await client.call(
        "checkout",
        "POST",
        "/orders",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "buyer_id": BUYER,
            "lines": [{"product_id": product["product_id"], "quantity": quantity}],
            "attribution": attribution,
        },
    )
    total = Money.model_validate(order["total"])
    say(
        f"  order {order['order_id']}: {quantity} x {product['title']} = {total}"
        f"  via {attribution['source']}"
    )
    return order


async def place_orders(
    client: PlatformClient,
    listed: shopbench.ListedCatalog,
    tags: dict[str, list[dict[str, Any]]],
) -> tuple[list[dict[str, Any]], str]:
    heading("Buying")
    for product in listed.products.values():  # checkout learns products from catalog events
        await Seller(client).sellable(product)
    video_id = next(v for v in tags if tags[v])
    tagged = listed.products[listed.bench_id(tags[video_id][0]["product_id"])]
    third_party = [p for p in listed.products.values() if p["shop"]["kind"] == "third_party"]
    first_party = [p for p in listed.products.values() if p["shop"]["kind"] == "first_party"]
    creator_pick = next(p for p in third_party if p is not tagged)
    live_pick = next(p for p in third_party if p not in (tagged, creator_pick))
    orders = [
        await buy(
            client,
            tagged,
            2,
            {"source": "auto_identified", "creator_id": CREATOR_VIDEO, "video_id": video_id},
        ),
        await buy(
            client,
            creator_pick,
            1,
            {"source": "creator_tagged", "creator_id": CREATOR_VIDEO, "video_id": video_id},
        ),
    ]
    session = await client.call(
        "live",
        "POST",
        "/sessions",
        json={"creator_id": CREATOR_LIVE, "title": "Friday night home sale"},
    )
    session_id = session["session_id"]
    await eventually(  # live learns products from catalog events too
        lambda: client.call(
            "live",
            "POST",
            f"/sessions/{session_id}/pins",
            json={"product_id": live_pick["product_id"]},
        ),
        what="live to pin the product",
    )
    say(f"  live session {session_id} by {CREATOR_LIVE}: pinned {live_pick['title']}")

    async def session_known() -> bool:
        response = await client["checkout"].post(
            "/orders",
            headers={"Idempotency-Key": f"probe-{session_id}"},
            json={
                "buyer_id": BUYER,
                "lines": [{"product_id": live_pick["product_id"], "quantity": 1}],
                "attribution": {"source": "live", "live_session_id": session_id},
            },
        )
        if response.status_code in (200, 201):
            orders.append(response.json())
            say(
                f"  order {response.json()['order_id']}: 1 x {live_pick['title']}"
                f" = {Money.model_validate(response.json()['total'])}  via live"
            )
            return True
        return False

    await eventually(session_known, what="checkout to see the live session")
    orders.append(await buy(client, first_party[0], 3, {"source": "none"}))
    orders.append(
        await buy(
            client,
            first_party[1],
            1,
            {"source": "creator_tagged", "creator_id": CREATOR_VIDEO, "video_id": video_id},
        )
    )
    await client.call("live", "POST", f"/sessions/{session_id}/end")
    return orders, session_id


async def refund(client: PlatformClient, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    heading("Refunds")
    partial = await client.call(
        "checkout",
        "POST",
        f"/orders/{orders[0]['order_id']}/refunds",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "amount_minor": orders[0]["total"]["amount_minor"] // 3,
            "reason": "one of them arrived chipped",
        },
    )
    full = await client.call(
        "checkout",
        "POST",
        f"/orders/{orders[3]['order_id']}/refunds",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"reason": "changed my mind"},
    )
    for order, body in ((orders[0], partial), (orders[3], full)):
        say(
            f"  order {order['order_id']}: refunded"
            f" {Money.model_validate(body['refund']['amount'])}"
        )
    return [partial["order"], full["order"]]


def expected_balances(orders: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], int]:
    """Every account's balance re-derived from the orders by the README's rounding rule,
    independently of the commission service. Signed: debits +, credits -."""
    expected: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for order in orders:
        currency = order["total"]["currency"]
        creator = order["attribution"].get("creator_id")  # policy: auto-identified pays too
        shares = {"commission": 0, "fee": 0, "seller": 0}
        for line in order["lines"]:
            rates = {"fee": order["platform_fee_bps"]}
            if creator:
                rates["commission"] = line["commission_bps"]
            for name, part in split(line["line_total"]["amount_minor"], rates, "seller").items():
                shares[name] += part
        gross = order["total"]["amount_minor"]
        refunded = order["refunded_total"]["amount_minor"]
        reversed_commission = prorate(shares["commission"], refunded, gross)
        reversed_fee = prorate(shares["fee"], refunded, gross)
        net = {
            "commission": shares["commission"] - reversed_commission,
            "fee": shares["fee"] - reversed_fee,
        }
        net["seller"] = gross - refunded - net["commission"] - net["fee"]
        proceeds = (
            ("platform", "platform", "first_party_revenue")
            if order["shop_kind"] == "first_party"
            else ("seller", order["seller_id"], "payable")
        )
        expected[("platform", "platform", "cash", currency)] += gross - refunded
        expected[(*proceeds, currency)] -= net["seller"]
        expected[("platform", "platform", "fee_revenue", currency)] -= net["fee"]
        if creator:
            expected[("creator", creator, "payable", currency)] -= net["commission"]
    return expected


async def print_ledger(
    client: PlatformClient, orders: list[dict[str, Any]], transactions_expected: int
) -> bool:
    heading("Ledger")

    async def settled() -> dict[str, Any] | None:
        trial: dict[str, Any] = await client.call("commission", "GET", "/ledger/trial-balance")
        done = sum(c["transactions"] for c in trial["currencies"]) >= transactions_expected
        return trial if done else None

    trial = await eventually(settled, timeout_s=60, what="ledger postings")
    accounts = (await client.call("commission", "GET", "/accounts"))["accounts"]
    expected = expected_balances(orders)
    by_currency: dict[str, int] = defaultdict(int)
    exact = True
    say(f"  {'owner':<9} {'id':<18} {'account':<20} {'balance':>14}  expected by the rule")
    for account in sorted(accounts, key=lambda a: (a["currency"], a["owner_type"], a["owner_id"])):
        key = (account["owner_type"], account["owner_id"], account["kind"], account["currency"])
        balance = Money(amount_minor=account["balance_minor"], currency=account["currency"])
        by_currency[account["currency"]] += account["balance_minor"]
        matches = expected.pop(key, 0) == account["balance_minor"]
        exact = exact and matches
        say(
            f"  {account['owner_type']:<9} {account['owner_id']:<18} {account['kind']:<20}"
            f" {balance!s:>14}  {'exact' if matches else 'MISMATCH'}"
        )
    exact = exact and not any(expected.values())
    balanced = all(total == 0 for total in by_currency.values())
    for currency in trial["currencies"]:
        say(
            f"  {currency['currency']}: {currency['transactions']} transactions,"
            f" entries sum to {currency['sum_minor']},"
            f" unbalanced transactions: {currency['imbalanced_transactions']}"
        )
        balanced = balanced and currency["sum_minor"] == 0
        balanced = balanced and currency["imbalanced_transactions"] == 0
    say(f"  every transaction sums to zero: {'yes' if balanced else 'NO'}")
    say(f"  creator, seller and platform balances exact: {'yes' if exact else 'NO'}")
    return balanced and exact


async def run_demo(data_dir: Path) -> int:
    root = shopbench.ensure_dataset(DATASET, SEED, SCALE, ["test", "val"], log=say)
    say("Vitrine demo: starting the embedded platform (broker, PostgreSQL, Qdrant, services)...")
    async with EmbeddedPlatform(data_dir, fresh=True) as platform:
        urls = {name: platform.service_url(name) for name in platform.service_names}
        for name, url in urls.items():
            say(f"  {name:<11} {url}")
        media = LocalMediaStore(platform.media_root)
        async with PlatformClient(urls, platform.bootstrap_servers) as client:
            listed = await seed_catalog(client, root)
            tags = await make_shoppable(client, media, root, listed)
            if not any(tags.values()):
                say("No video got a tag: the demo cannot buy through one.")
                return 1
            orders, session_id = await place_orders(client, listed, tags)
            refunded = await refund(client, orders)
            for order in refunded:
                orders = [order if o["order_id"] == order["order_id"] else o for o in orders]
            session = await eventually(
                lambda: _with_sales(client, session_id), what="live to tally the session"
            )
            heading("Live session")
            for sales in session["sales"]:
                say(
                    f"  {session_id} ({session['status']}): {sales['orders']} order(s),"
                    f" gross {Money.model_validate(sales['gross'])},"
                    f" net {Money.model_validate(sales['net'])}"
                )
            balanced = await print_ledger(client, orders, len(orders) + len(refunded))
    say()
    say("Platform stopped. " + ("Demo complete." if balanced else "LEDGER CHECK FAILED."))
    return 0 if balanced else 1


async def _with_sales(client: PlatformClient, session_id: str) -> dict[str, Any] | None:
    session: dict[str, Any] = await client.call("live", "GET", f"/sessions/{session_id}")
    return session if session["sales"] else None


def main(data_dir: str = ".vitrine/demo") -> int:
    return asyncio.run(run_demo(Path(data_dir)))


if __name__ == "__main__":
    sys.exit(main())
