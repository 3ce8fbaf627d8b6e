"""Handlers on real PostgreSQL: postings, balances, emitted events, dead letters."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import asyncpg
import pytest
from commission_testkit import handlers, line, order_placed, order_refunded, wrap
from prometheus_client import REGISTRY
from pydantic import ValidationError

from vitrine_commission.adapters import repository
from vitrine_commission.app import MIGRATIONS, build_runtime
from vitrine_commission.domain import (
    AccountKind,
    AttributionPolicy,
    OwnerType,
    Shares,
    book_refund,
    book_sale,
)
from vitrine_commission.handlers import _accrued, _reversed
from vitrine_commission.settings import CommissionSettings
from vitrine_runtime.consumer import Outcome, PermanentError
from vitrine_runtime.db import Database
from vitrine_runtime.testing import message_of
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import (
    AttributionSource,
    CommissionAccrued,
    CommissionReversed,
    OrderPlaced,
    ShopKind,
)
from vitrine_schemas.money import Money


async def _balances(conn: asyncpg.Connection) -> dict[tuple[str, str, str, str], int]:
    return {
        (a.ref.owner_type.value, a.ref.owner_id, a.ref.kind.value, a.ref.currency): a.balance_minor
        for a in await repository.list_accounts(conn, limit=1000)
    }


async def _outbox(conn: asyncpg.Connection) -> list[dict[str, object]]:
    rows = await conn.fetch("SELECT event_type, key, payload FROM outbox ORDER BY id")
    return [{"type": r["event_type"], "key": r["key"], **json.loads(r["payload"])} for r in rows]


def _counter(name: str, currency: str) -> float:
    return REGISTRY.get_sample_value(name, {"currency": currency}) or 0.0


async def test_sale_then_partial_and_final_refund_give_the_expected_balances(
    ledger_db: Database,
) -> None:
    handle = handlers()
    # 3 x 33.33 EUR at 12.5 % commission, 4 % fee: gross 9999 cents.
    order = order_placed(lines=[line(3333, 3, commission_bps=1250)], platform_fee_bps=400)
    accrued_before = _counter("vitrine_commission_accrued_minor_total", "EUR")
    reversed_before = _counter("vitrine_commission_reversed_minor_total", "EUR")
    async with ledger_db.transaction() as conn:
        await handle.on_order_placed(wrap(order), conn)
    async with ledger_db.transaction() as conn:
        # 9999 * 12.5 % = 1249.875 -> 1249; 9999 * 4 % = 399.96 -> 399; seller 8351.
        assert await _balances(conn) == {
            ("platform", "platform", "cash", "EUR"): 9999,
            ("seller", "seller-1", "payable", "EUR"): -8351,
            ("creator", "creator-1", "payable", "EUR"): -1249,
            ("platform", "platform", "fee_revenue", "EUR"): -399,
        }
    assert _counter("vitrine_commission_accrued_minor_total", "EUR") - accrued_before == 1249

    async with ledger_db.transaction() as conn:
        await handle.on_order_refunded(wrap(order_refunded(order, "r1", 3333, 3333)), conn)
    async with ledger_db.transaction() as conn:
        # Cumulative 3333 / 9999 = 1/3: commission floor(1249 / 3) = 416, fee 133.
        assert await _balances(conn) == {
            ("platform", "platform", "cash", "EUR"): 6666,
            ("seller", "seller-1", "payable", "EUR"): -8351 + 2784,
            ("creator", "creator-1", "payable", "EUR"): -1249 + 416,
            ("platform", "platform", "fee_revenue", "EUR"): -399 + 133,
        }
        await handle.on_order_refunded(wrap(order_refunded(order, "r2", 6666, 9999)), conn)
    async with ledger_db.transaction() as conn:
        assert set((await _balances(conn)).values()) == {0}
        [sale, first, last] = await repository.list_transactions(conn, order.order_id)
        assert (sale.kind, first.refund_id, last.refund_id) == ("sale", "r1", "r2")
        assert first.shares.creator_commission + last.shares.creator_commission == 1249
        events = await _outbox(conn)
        [row] = await repository.trial_balance(conn)
    assert _counter("vitrine_commission_reversed_minor_total", "EUR") - reversed_before == 1249
    assert (row.sum_minor, row.transactions, row.entries, row.imbalanced_transactions) == (
        0,
        3,
        12,
        0,
    )
    assert [e["type"] for e in events] == [
        "commission.accrued",
        "commission.reversed",
        "commission.reversed",
    ]
    assert {e["key"] for e in events} == {order.order_id}
    accrued = events[0]["data"]
    assert accrued == {
        "order_id": "o-1",
        "transaction_id": str(sale.id),
        "shop_id": "shop-1",
        "creator_id": "creator-1",
        "gross": {"amount_minor": 9999, "currency": "EUR"},
        "seller_proceeds": {"amount_minor": 8351, "currency": "EUR"},
        "creator_commission": {"amount_minor": 1249, "currency": "EUR"},
        "platform_fee": {"amount_minor": 399, "currency": "EUR"},
    }
    reversal = events[1]["data"]
    assert isinstance(reversal, dict)
    assert reversal["refund_id"] == "r1"
    assert reversal["creator_commission_reversed"] == {"amount_minor": 416, "currency": "EUR"}
    assert reversal["seller_proceeds_reversed"] == {"amount_minor": 2784, "currency": "EUR"}


async def test_first_party_sale_goes_to_the_platform(ledger_db: Database) -> None:
    order = order_placed(shop_kind=ShopKind.FIRST_PARTY, creator_id=None)
    async with ledger_db.transaction() as conn:
        await handlers().on_order_placed(wrap(order), conn)
        assert await _balances(conn) == {
            ("platform", "platform", "cash", "EUR"): 1000,
            ("platform", "platform", "first_party_revenue", "EUR"): -950,
            ("platform", "platform", "fee_revenue", "EUR"): -50,
        }
        assert await repository.list_accounts(conn, owner_type=OwnerType.SELLER) == []


async def test_auto_identified_sale_without_commission_policy_pays_the_seller(
    ledger_db: Database,
) -> None:
    order = order_placed(source=AttributionSource.AUTO_IDENTIFIED)
    async with ledger_db.transaction() as conn:
        await handlers(commission_on_auto_identified=False).on_order_placed(wrap(order), conn)
        balances = await _balances(conn)
        [event] = await _outbox(conn)
    assert balances[("seller", "seller-1", "payable", "EUR")] == -950
    assert not any(owner == "creator" for owner, *_ in balances)
    data = event["data"]
    assert isinstance(data, dict)
    assert data["creator_id"] is None


async def test_a_refund_of_an_order_never_booked_is_rejected(ledger_db: Database) -> None:
    refund = order_refunded(order_placed("o-unknown"), "r1", 10, 10)
    with pytest.raises(PermanentError, match="never booked"):
        async with ledger_db.transaction() as conn:
            await handlers().on_order_refunded(wrap(refund), conn)


async def test_an_order_re_emitted_under_a_new_event_id_is_booked_once(
    ledger_db: Database,
) -> None:
    order = order_placed()
    handle = handlers()
    for _ in range(2):
        async with ledger_db.transaction() as conn:
            await handle.on_order_placed(wrap(order), conn)
            await handle.on_order_refunded(wrap(order_refunded(order, "r1", 10, 10)), conn)
    async with ledger_db.transaction() as conn:
        assert len(await repository.list_transactions(conn, order.order_id)) == 2
        assert len(await _outbox(conn)) == 2


async def test_an_impossible_split_is_rejected(ledger_db: Database) -> None:
    # The contract itself refuses rates above the whole, so such an order never decodes
    # (it is dead-lettered as invalid_payload); the ledger's own check stays as a backstop.
    with pytest.raises(ValidationError, match="exceed 100 %"):
        order_placed(lines=[line(1000, commission_bps=8000)], platform_fee_bps=3000)


# --- through the runtime's consumer: inbox and dead letters, without Kafka ---------------


async def test_the_service_consumer_dedups_and_dead_letters(ledger_db: Database) -> None:
    runtime = build_runtime(CommissionSettings(consumer_retry_backoff_s=0.01))
    assert runtime.consumer.event_types == ["order.placed", "order.refunded"]
    dead: list[tuple[str, dict[str, str]]] = []

    async def publish(topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> None:
        dead.append((topic, headers))

    runtime.consumer.bind(ledger_db, publish)
    order: OrderPlaced = order_placed()
    placed = wrap(order)
    assert await runtime.consumer.handle(message_of(placed, 0)) is Outcome.HANDLED
    assert await runtime.consumer.handle(message_of(placed, 1)) is Outcome.DUPLICATE
    orphan = wrap(order_refunded(order_placed("o-orphan"), "r1", 5, 5))
    assert await runtime.consumer.handle(message_of(orphan, 2)) is Outcome.DEAD_LETTERED
    [(topic, headers)] = dead
    assert topic == "dlq.commission"
    assert headers["dlq-reason"] == "rejected"
    assert "never booked" in headers["dlq-detail"]
    async with ledger_db.transaction() as conn:
        accounts = await repository.list_accounts(conn, owner_type=OwnerType.PLATFORM)
        assert {a.ref.kind for a in accounts} == {AccountKind.CASH, AccountKind.FEE_REVENUE}
        assert len(await _outbox(conn)) == 1


async def test_a_batch_books_the_same_ledger_as_one_event_at_a_time(
    ledger_db: Database, database_url: str
) -> None:
    orders = [order_placed(f"o-{n}", [line(1000 + n, 3, commission_bps=1250)]) for n in range(6)]
    broken = order_placed("o-broken").model_copy(
        update={"total": Money(amount_minor=1, currency="EUR")}  # lines do not sum to it
    )
    events: list[Envelope[Any]] = [wrap(o) for o in orders[:3]]
    events += [wrap(order_refunded(orders[0], "r1", 1000, 1000)), wrap(broken)]
    events += [wrap(o) for o in orders[3:]] + [wrap(orders[1])]  # a re-emitted order
    events += [wrap(order_refunded(orders[0], "r2", 2000, 3000))]

    async def book(database: Database, batch_size: int) -> tuple[object, ...]:
        runtime = build_runtime(
            CommissionSettings(consumer_retry_backoff_s=0.001, consumer_batch_size=batch_size)
        )
        dead: list[str] = []

        async def publish(topic: str, key: bytes | None, value: bytes, h: dict[str, str]) -> None:
            dead.append(h["dlq-reason"])

        runtime.consumer.bind(database, publish)
        messages = [message_of(e, n) for n, e in enumerate(events)]
        if batch_size == 1:
            outcomes = [await runtime.consumer.handle(m) for m in messages]
        else:
            outcomes = await runtime.consumer.handle_batch(messages)
        async with database.transaction() as conn:
            transactions = {
                o.order_id: [(t.kind, t.refund_id, t.shares) for t in txs]
                for o in [*orders, broken]
                if (txs := await repository.list_transactions(conn, o.order_id))
            }
            emitted = [(e["type"], e["key"]) for e in await _outbox(conn)]
            return outcomes, dead, await _balances(conn), transactions, emitted

    one_schema = await Database.connect(database_url, f"t_{uuid.uuid4().hex[:12]}", pool_size=2)
    try:
        await one_schema.migrate(MIGRATIONS)
        one_by_one = await book(one_schema, 1)
    finally:
        await one_schema.pool.execute(f'DROP SCHEMA "{one_schema.schema}" CASCADE')
        await one_schema.close()
    batched = await book(ledger_db, 500)
    assert batched == one_by_one
    outcomes, dead, balances, transactions, emitted = batched
    assert outcomes.count(Outcome.HANDLED) == 9  # 6 orders, 2 refunds, the re-emitted one
    assert dead == ["rejected"]  # the broken order alone
    assert "o-broken" not in transactions
    assert len(emitted) == 8  # 6 accruals and 2 reversals
    assert sum(balances.values()) == 0


async def test_a_three_way_split_of_one_fils_and_a_one_yen_refund_balance_in_the_ledger(
    ledger_db: Database,
) -> None:
    handle = handlers()
    # 0.001 KWD split between creator (80 %), platform (5 %) and seller: the floors give
    # the creator and the platform nothing, the seller takes the one fils.
    fils = order_placed("o-kwd", [line(1, 1, commission_bps=8000, currency="KWD")])
    yen = order_placed("o-jpy", [line(1999, 1, commission_bps=1500, currency="JPY")])
    async with ledger_db.transaction() as conn:
        await handle.on_order_placed(wrap(fils), conn)
        await handle.on_order_placed(wrap(yen), conn)
    async with ledger_db.transaction() as conn:
        await handle.on_order_refunded(wrap(order_refunded(yen, "r1", 1, 1)), conn)
    async with ledger_db.transaction() as conn:
        [kwd_sale] = await repository.list_transactions(conn, "o-kwd")
        [_, yen_refund] = await repository.list_transactions(conn, "o-jpy")
        trial = {row.currency: row for row in await repository.trial_balance(conn)}
        balances = await _balances(conn)
    assert (kwd_sale.shares.seller_proceeds, kwd_sale.shares.creator_commission) == (1, 0)
    assert kwd_sale.shares.platform_fee == 0
    assert balances[("seller", "seller-1", "payable", "KWD")] == -1
    assert yen_refund.shares.total == 1  # the seller gives the yen back
    for currency in ("KWD", "JPY"):
        assert trial[currency].sum_minor == 0
        assert trial[currency].imbalanced_transactions == 0
    assert balances[("platform", "platform", "cash", "JPY")] == 1998


@pytest.mark.parametrize(
    "order",
    [
        order_placed("o-eur", [line(1999, 3, commission_bps=1250), line(500)]),
        order_placed("o-kwd", [line(12345, 2, currency="KWD")], creator_id=None),
        order_placed("o-1p", [line(1500, currency="JPY")], shop_kind=ShopKind.FIRST_PARTY),
    ],
    ids=["eur-two-lines", "kwd-no-creator", "jpy-first-party"],
)
def test_emitted_events_equal_the_models_built_field_by_field(order: OrderPlaced) -> None:
    # The handlers validate the emitted events from plain data in one call; the result
    # must be the very model the field-by-field constructors give.
    booked, sale = book_sale(order, AttributionPolicy())
    currency = sale.currency

    def money(amount: int) -> Money:
        return Money(amount_minor=amount, currency=currency)

    accrued = _accrued(booked, sale)
    assert type(accrued) is CommissionAccrued
    assert accrued == CommissionAccrued(
        order_id=order.order_id,
        transaction_id=str(sale.id),
        shop_id=order.shop_id,
        creator_id=booked.creator_id,
        gross=money(sale.amount_minor),
        seller_proceeds=money(sale.shares.seller_proceeds),
        creator_commission=money(sale.shares.creator_commission),
        platform_fee=money(sale.shares.platform_fee),
    )
    assert CommissionAccrued.model_validate_json(accrued.model_dump_json()) == accrued
    total = order.total.amount_minor
    reversal = book_refund(booked, Shares.zero(), order_refunded(order, "r1", total, total))
    reversed_ = _reversed(booked, reversal)
    assert type(reversed_) is CommissionReversed
    assert reversed_ == CommissionReversed(
        order_id=order.order_id,
        refund_id="r1",
        transaction_id=str(reversal.id),
        shop_id=order.shop_id,
        creator_id=booked.creator_id,
        refund_amount=money(reversal.amount_minor),
        seller_proceeds_reversed=money(reversal.shares.seller_proceeds),
        creator_commission_reversed=money(reversal.shares.creator_commission),
        platform_fee_reversed=money(reversal.shares.platform_fee),
    )


def test_an_emitted_event_is_still_validated() -> None:
    booked, sale = book_sale(order_placed(), AttributionPolicy())
    with pytest.raises(ValidationError, match="currency"):
        _accrued(booked, dataclasses.replace(sale, currency="XYZ"))
    with pytest.raises(ValidationError, match="order_id"):
        _accrued(dataclasses.replace(booked, order_id=""), sale)
