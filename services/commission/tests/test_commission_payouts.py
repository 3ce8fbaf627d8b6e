"""Payouts: the rule (property-tested), and runs over HTTP against a real ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from commission_testkit import handlers, line, order_placed, order_refunded, wrap
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from vitrine_commission.api.payouts import PayoutsApi, build_payouts_router
from vitrine_commission.api.routes import LedgerApi, build_router
from vitrine_commission.domain import LedgerRuleError
from vitrine_commission.domain.accounts import creator_payable, platform_payouts_clearing
from vitrine_commission.domain.payouts import PayableSnapshot, PayoutPolicy, plan_payouts
from vitrine_commission.payout_runs import PayoutDefaults
from vitrine_runtime.db import Database
from vitrine_runtime.http import install_common_routes
from vitrine_schemas.events import OrderPlaced

# --- the rule, without a database --------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NO_HOLD = PayoutPolicy(hold=timedelta(0), minimums_minor={"EUR": 1})


def snapshot(held_credits: int, debits: int, account_id: int = 1) -> PayableSnapshot:
    return PayableSnapshot(account_id, creator_payable("c1", "EUR"), held_credits, debits)


def test_only_held_earnings_above_the_minimum_are_paid() -> None:
    policy = PayoutPolicy(hold=timedelta(days=14), minimums_minor={"EUR": 2000})
    assert policy.cutoff(T0) == T0 - timedelta(days=14)
    [payout] = plan_payouts("2025-01", [snapshot(-2500, 400), snapshot(-2000, 1, 2)], policy)
    assert (payout.account_id, payout.amount_minor) == (1, 2100)  # 1999 is below 2000
    legs = {e.account: e.amount_minor for e in payout.transaction.posting.entries}
    assert legs == {creator_payable("c1", "EUR"): 2100, platform_payouts_clearing("EUR"): -2100}
    # Deterministic per account and period: a retried run cannot pay twice.
    assert payout.id == plan_payouts("2025-01", [snapshot(-9, 0)], NO_HOLD)[0].id


def test_a_debt_is_not_paid_and_the_default_minimum_follows_the_currency() -> None:
    assert plan_payouts("p", [snapshot(-100, 300)], NO_HOLD) == []  # owes 200
    policy = PayoutPolicy(hold=timedelta(0), minimums_minor={}, default_minimum_major=10)
    assert (policy.minimum_minor("EUR"), policy.minimum_minor("JPY")) == (1000, 10)
    assert policy.minimum_minor("KWD") == 10_000
    with pytest.raises(LedgerRuleError, match="period"):
        plan_payouts("no spaces", [], NO_HOLD)
    with pytest.raises(LedgerRuleError, match="negative"):
        PayoutPolicy(hold=timedelta(seconds=-1), minimums_minor={})


# A payee's history: earnings (credits), claw-backs (debits) and payout runs, in time order.
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 10_000)),
        st.tuples(st.just("claw"), st.integers(1, 10_000)),
        st.tuples(st.just("run"), st.integers(0, 5)),  # hold, in steps
    ),
    max_size=40,
)


@given(STEPS, st.integers(1, 5000))
def test_payouts_never_pay_unheld_money_and_never_lose_a_debt(
    steps: list[tuple[str, int]], minimum: int
) -> None:
    entries: list[tuple[int, int]] = []  # (step, signed amount): credit -, debit +
    paid = 0
    policy_min = {"EUR": minimum}
    for now, (kind, value) in enumerate(steps):
        if kind == "earn":
            entries.append((now, -value))
        elif kind == "claw":
            entries.append((now, value))
        else:
            cutoff = now - value
            held = sum(a for t, a in entries if a < 0 and t <= cutoff)
            debits = sum(a for _, a in entries if a > 0)
            policy = PayoutPolicy(hold=timedelta(0), minimums_minor=policy_min)
            planned = plan_payouts(f"p{now}", [snapshot(held, debits)], policy)
            for payout in planned:
                assert payout.amount_minor >= minimum
                # never more than the earnings already held, net of everything taken back
                assert payout.amount_minor <= -held - debits
                entries.append((now, payout.amount_minor))
                paid += payout.amount_minor
    earned = -sum(a for _, a in entries if a < 0)
    clawed = sum(a for _, a in entries if a > 0) - paid
    # A final run with no hold and a minimum of one pays whatever is left, or leaves the
    # debt: what was paid plus what is owed back is always earned minus clawed back.
    balance = sum(a for _, a in entries)
    final = plan_payouts("final", [snapshot(-earned, clawed + paid)], NO_HOLD)
    left = sum(p.amount_minor for p in final)
    assert paid + left - max(0, balance) == earned - clawed
    assert left == max(0, -balance)


# --- runs over HTTP, against the real ledger ---------------------------------------------


async def _ready() -> dict[str, bool]:
    return {"started": True}


@pytest.fixture
async def client(ledger_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_common_routes(app, _ready)
    app.include_router(build_router(LedgerApi(database=lambda: ledger_db)))
    defaults = PayoutDefaults(hold=timedelta(days=14), minimum_major=10)
    app.include_router(build_payouts_router(PayoutsApi(lambda: ledger_db, defaults)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
        yield http


async def sell(ledger_db: Database, order: OrderPlaced) -> None:
    async with ledger_db.transaction() as conn:
        await handlers().on_order_placed(wrap(order), conn)


async def refund(ledger_db: Database, order: OrderPlaced, refund_id: str, amount: int) -> None:
    async with ledger_db.transaction() as conn:
        total = await conn.fetchval(
            "SELECT coalesce(sum(amount_minor), 0) FROM transactions"
            " WHERE order_id = $1 AND kind = 'refund'",
            order.order_id,
        )
        event = order_refunded(order, refund_id, amount, total + amount)
        await handlers().on_order_refunded(wrap(event), conn)


async def run(client: httpx.AsyncClient, expect: int = 201, **body: Any) -> dict[str, Any]:
    response = await client.post("/payouts/runs", json={"hold_seconds": 0, **body})
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def creator_balance(client: httpx.AsyncClient) -> int:
    body = (await client.get("/accounts", params={"owner_id": "creator-1"})).json()
    [account] = body["accounts"]
    return int(account["balance_minor"])


def a_sale(order_id: str, unit_minor: int) -> OrderPlaced:
    # 20 % commission, 5 % fee: the creator earns a fifth of the line.
    return order_placed(order_id, [line(unit_minor, 1, commission_bps=2000)])


async def test_a_run_pays_each_payable_once_per_period_and_balances(
    ledger_db: Database, client: httpx.AsyncClient
) -> None:
    await sell(ledger_db, a_sale("o-1", 10_000))  # creator 2000, seller 7500
    first = await run(client, period="2025-01", min_amounts={"EUR": 1000})
    assert first["replayed"] is False
    paid = {(p["owner_type"], p["owner_id"]): p["amount_minor"] for p in first["payouts"]}
    assert paid == {("creator", "creator-1"): 2000, ("seller", "seller-1"): 7500}
    assert first["totals"] == [{"currency": "EUR", "payouts": 2, "amount_minor": 9500}]
    assert await creator_balance(client) == 0

    # The same period again, even after new earnings: the first run, nothing paid twice.
    await sell(ledger_db, a_sale("o-2", 10_000))
    again = await run(client, expect=200, period="2025-01", min_amounts={"EUR": 1000})
    assert again["replayed"] is True
    assert again["run_id"] == first["run_id"]
    assert again["payouts"] == first["payouts"]
    clash = await client.post(
        "/payouts/runs", json={"period": "2025-01", "hold_seconds": 60, "min_amounts": None}
    )
    assert clash.status_code == 409
    assert "already ran" in clash.json()["message"]

    listed = (await client.get("/payouts", params={"owner_id": "creator-1"})).json()
    assert [(p["period"], p["amount_minor"]) for p in listed["payouts"]] == [("2025-01", 2000)]
    trial = (await client.get("/ledger/trial-balance")).json()
    assert trial["balanced"] is True
    clearing = (await client.get("/accounts", params={"owner_type": "platform"})).json()
    balances = {a["kind"]: a["balance_minor"] for a in clearing["accounts"]}
    assert balances["payouts_clearing"] == -9500


async def test_two_runs_at_once_never_pay_the_same_balance_twice(
    ledger_db: Database, client: httpx.AsyncClient
) -> None:
    await sell(ledger_db, a_sale("o-1", 10_000))
    runs = await asyncio.gather(*(run(client, period=f"p-{n}") for n in range(4)))
    assert sum(len(r["payouts"]) for r in runs) == 2  # one run paid, the others found 0
    assert await creator_balance(client) == 0


async def test_earnings_inside_the_hold_wait_for_a_later_run(
    ledger_db: Database, client: httpx.AsyncClient
) -> None:
    await sell(ledger_db, a_sale("o-old", 10_000))  # creator earns 2000
    async with ledger_db.pool.acquire() as conn:
        between = await conn.fetchval("SELECT clock_timestamp()")
    await asyncio.sleep(0.05)
    await sell(ledger_db, a_sale("o-new", 5_000))  # creator earns 1000, inside the hold
    async with ledger_db.pool.acquire() as conn:
        now = await conn.fetchval("SELECT now()")
    hold = (now - between).total_seconds()
    held = await run(client, period="h-1", hold_seconds=hold, as_of=now.isoformat())
    by_owner = {p["owner_type"]: p["amount_minor"] for p in held["payouts"]}
    assert by_owner == {"creator": 2000, "seller": 7500}
    assert datetime.fromisoformat(held["cutoff"]) == between
    assert await creator_balance(client) == -1000  # still owed, paid by a later run
    later = await run(client, period="h-2")
    assert {p["owner_type"]: p["amount_minor"] for p in later["payouts"]} == {
        "creator": 1000,
        "seller": 3750,
    }
    future = await client.post(
        "/payouts/runs", json={"period": "h-3", "as_of": "2999-01-01T00:00:00Z"}
    )
    assert future.status_code == 422


async def test_a_refund_after_a_payout_is_a_debt_carried_to_the_next_payout(
    ledger_db: Database, client: httpx.AsyncClient
) -> None:
    sale = a_sale("o-1", 10_000)
    await sell(ledger_db, sale)
    await run(client, period="2025-01", min_amounts={"EUR": 1})  # creator paid 2000
    await refund(ledger_db, sale, "r1", 10_000)  # full refund: 2000 clawed back
    assert await creator_balance(client) == 2000  # a debit balance: the creator owes it

    # A refund inside the hold counts at once, so the debt nets the next earnings.
    await sell(ledger_db, a_sale("o-2", 5_000))  # +1000
    nothing = await run(client, period="2025-02", min_amounts={"EUR": 1})
    assert [p for p in nothing["payouts"] if p["owner_type"] == "creator"] == []
    assert await creator_balance(client) == 1000  # still owes 1000: carried, not lost

    await sell(ledger_db, a_sale("o-3", 20_000))  # +4000
    paid = await run(client, period="2025-03", min_amounts={"EUR": 1})
    [creator] = [p for p in paid["payouts"] if p["owner_type"] == "creator"]
    assert creator["amount_minor"] == 3000  # 4000 earned minus the 1000 still owed
    listed = (await client.get("/payouts", params={"owner_id": "creator-1"})).json()
    # Earned 2000 + 1000 + 4000, clawed back 2000: paid 5000 in all, nothing lost.
    assert sum(p["amount_minor"] for p in listed["payouts"]) == 5000
    assert await creator_balance(client) == 0
    assert (await client.get("/ledger/trial-balance")).json()["balanced"] is True


async def test_the_payout_tables_are_append_only(
    ledger_db: Database, client: httpx.AsyncClient
) -> None:
    await sell(ledger_db, a_sale("o-1", 10_000))
    await run(client, period="2025-01")
    async with ledger_db.pool.acquire() as conn:
        for statement in ("UPDATE payouts SET amount_minor = 1", "DELETE FROM payout_runs"):
            with pytest.raises(Exception, match="append-only"):
                await conn.execute(statement)
