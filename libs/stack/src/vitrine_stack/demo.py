"""`make demo`: the whole commerce path on the embedded platform, start to ledger.

1. start the platform (Kafka-protocol broker, PostgreSQL, embedded Qdrant, services);
2. seed two shops (a third-party seller in EUR, the platform's own shop in JPY) and
   products with real photos;
3. play the detector: publish `objects.detected` for a video, with crops cut, scaled,
   rotated and re-lit from the product photos, plus things no shop sells;
4. show the shoppable tags the catalog matched;
5. buy through the video's tags, through a live session and from the platform's shop;
6. refund one order in part and one in full;
7. print the ledger, check every transaction sums to zero and every balance is exactly
   what the split rules give; then stop the platform.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from vitrine_runtime.media import LocalMediaStore
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import CropRef, ObjectsDetected
from vitrine_schemas.money import Money, prorate, split
from vitrine_stack.client import PlatformClient, Seller, eventually
from vitrine_stack.platform import EmbeddedPlatform
from vitrine_stack.samples import DISTRACTORS, SAMPLE_PRODUCTS, studio_images, video_crops

CREATOR_VIDEO = "creator-ana"
CREATOR_LIVE = "creator-ben"
BUYER = "buyer-kim"


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say()
    say(f"== {text}")


async def seed_catalog(client: PlatformClient) -> dict[str, dict[str, Any]]:
    heading("Seeding shops and products (real photos from scikit-image)")
    seller = await client.call(
        "catalog",
        "POST",
        "/shops",
        json={
            "name": "Northwind Home & Hobby",
            "kind": "third_party",
            "seller_id": "seller-northwind",
        },
    )
    platform_shop = await client.call(
        "catalog",
        "POST",
        "/shops",
        json={"name": "Vitrine Originals", "kind": "first_party", "seller_id": "platform"},
    )
    terms = {
        "coffee": (seller, Money(amount_minor=1899, currency="EUR"), 1500),
        "rocket": (seller, Money(amount_minor=2450, currency="EUR"), 1200),
        "astronaut": (seller, Money(amount_minor=3999, currency="EUR"), 2000),
        "chelsea": (platform_shop, Money(amount_minor=3480, currency="JPY"), 1000),
        "motorcycle": (platform_shop, Money(amount_minor=12800, currency="JPY"), 800),
    }
    products: dict[str, dict[str, Any]] = {}
    for sample in SAMPLE_PRODUCTS:
        shop, price, rate = terms[sample.key]
        product = await client.call(
            "catalog",
            "POST",
            f"/shops/{shop['shop_id']}/products",
            json={
                "title": sample.title,
                "price": price.model_dump(),
                "stock": 5,
                "commission_bps": rate,
            },
        )
        for image in studio_images(sample):
            await client.call(
                "catalog",
                "POST",
                f"/products/{product['product_id']}/images",
                content=image,
                headers={"Content-Type": "image/jpeg"},
            )
        products[sample.key] = {**product, "shop": shop}
        say(
            f"  {shop['name']:<24} {sample.title:<32} {price!s:>12}  commission"
            f" {rate / 100:.0f} %  ({len(studio_images(sample))} images)"
        )
    return products


async def play_detector(
    client: PlatformClient, media: LocalMediaStore, video_id: str
) -> dict[str, str]:
    """Publish one `objects.detected` per tracked object; returns track id -> what it is."""
    heading(f"Video {video_id} by {CREATOR_VIDEO}: publishing tracked objects with crops")
    shown = ["coffee", "rocket", "astronaut", "chelsea"]
    tracks: dict[str, str] = {}
    objects = [(key, next(s for s in SAMPLE_PRODUCTS if s.key == key).photo) for key in shown]
    objects += [(f"not for sale: {name}", photo) for name, photo in DISTRACTORS]
    for index, (what, photo) in enumerate(objects):
        track_id = f"t{index + 1}"
        crops = []
        for n, crop in enumerate(video_crops(photo(), count=4, seed=index)):
            uri = await media.put(f"crops/{video_id}/{track_id}-{n}.jpg", crop, "image/jpeg")
            crops.append(CropRef(uri=uri, at_ms=index * 4000 + n * 500, quality=0.9 - n * 0.1))
        event = ObjectsDetected(
            video_id=video_id,
            creator_id=CREATOR_VIDEO,
            track_id=track_id,
            label="object",
            confidence=0.8,
            first_seen_ms=index * 4000,
            last_seen_ms=index * 4000 + 3500,
            crops=crops,
        )
        await client.publish(Envelope.wrap(event, producer="demo-detector"))
        tracks[track_id] = what
        say(f"  track {track_id}: {what} ({len(crops)} crops)")
    return tracks


async def show_tags(
    client: PlatformClient, video_id: str, tracks: dict[str, str], expected: int
) -> dict[str, Any]:
    heading("Shoppable tags the catalog matched")

    async def tags() -> dict[str, Any] | None:
        body: dict[str, Any] = await client.call("catalog", "GET", f"/videos/{video_id}/tags")
        return body if len(body["tags"]) >= expected else None

    body = await eventually(tags, timeout_s=120, what="video tags")
    tagged = {tag["track_id"]: tag for tag in body["tags"]}
    for track_id, what in tracks.items():
        tag = tagged.get(track_id)
        if tag:
            span = f"{tag['first_seen_ms'] / 1000:4.1f}s-{tag['last_seen_ms'] / 1000:4.1f}s"
            say(
                f"  {track_id} [{span}] -> {tag['title']} ({tag['product_id']}),"
                f" score {tag['score']:.3f}"
            )
        else:
            say(f"  {track_id} ({what}) -> no tag")
    return tagged


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
    products: dict[str, dict[str, Any]],
    video_id: str,
    tags: dict[str, Any],
) -> tuple[list[dict[str, Any]], str]:
    heading("Buying")
    for product in products.values():  # checkout learns products from catalog events
        await Seller(client).sellable(product)
    by_product = {tag["product_id"]: tag for tag in tags.values()}
    coffee, rocket = products["coffee"], products["rocket"]
    orders = [
        await buy(
            client,
            coffee,
            2,
            {
                "source": "auto_identified" if coffee["product_id"] in by_product else "none",
                "creator_id": CREATOR_VIDEO,
                "video_id": video_id,
            },
        ),
        await buy(
            client,
            rocket,
            1,
            {"source": "creator_tagged", "creator_id": CREATOR_VIDEO, "video_id": video_id},
        ),
    ]
    session = await client.call(
        "live",
        "POST",
        "/sessions",
        json={"creator_id": CREATOR_LIVE, "title": "Friday night space sale"},
    )
    session_id = session["session_id"]
    astronaut = products["astronaut"]
    await eventually(  # live learns products from catalog events too
        lambda: client.call(
            "live",
            "POST",
            f"/sessions/{session_id}/pins",
            json={"product_id": astronaut["product_id"]},
        ),
        what="live to pin the product",
    )
    say(f"  live session {session_id} by {CREATOR_LIVE}: pinned {products['astronaut']['title']}")

    async def session_known() -> bool:
        response = await client["checkout"].post(
            "/orders",
            headers={"Idempotency-Key": f"probe-{session_id}"},
            json={
                "buyer_id": BUYER,
                "lines": [{"product_id": products["astronaut"]["product_id"], "quantity": 1}],
                "attribution": {"source": "live", "live_session_id": session_id},
            },
        )
        if response.status_code in (200, 201):
            orders.append(response.json())
            say(
                f"  order {response.json()['order_id']}: 1 x {products['astronaut']['title']}"
                f" = {Money.model_validate(response.json()['total'])}  via live"
            )
            return True
        return False

    await eventually(session_known, what="checkout to see the live session")
    orders.append(await buy(client, products["chelsea"], 3, {"source": "none"}))
    orders.append(
        await buy(
            client,
            products["motorcycle"],
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
        json={"amount_minor": 1000, "reason": "one cup arrived chipped"},
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
    say("Vitrine demo: starting the embedded platform (broker, PostgreSQL, Qdrant, services)...")
    async with EmbeddedPlatform(data_dir, fresh=True) as platform:
        urls = {name: platform.service_url(name) for name in platform.service_names}
        for name, url in urls.items():
            say(f"  {name:<11} {url}")
        media = LocalMediaStore(platform.media_root)
        async with PlatformClient(urls, platform.bootstrap_servers) as client:
            products = await seed_catalog(client)
            video_id = f"vid-{uuid.uuid4().hex[:8]}"
            tracks = await play_detector(client, media, video_id)
            tags = await show_tags(client, video_id, tracks, expected=4)
            orders, session_id = await place_orders(client, products, video_id, tags)
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
