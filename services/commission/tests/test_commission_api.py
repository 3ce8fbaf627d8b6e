"""The HTTP API through ASGI against a migrated database; no broker involved."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from commission_testkit import handlers, line, order_placed, order_refunded, wrap
from fastapi import FastAPI
from prometheus_client import REGISTRY

from vitrine_commission.api.routes import LedgerApi, build_router
from vitrine_commission.app import create_app
from vitrine_commission.settings import CommissionSettings
from vitrine_runtime.db import Database
from vitrine_runtime.http import install_common_routes


async def _ready() -> dict[str, bool]:
    return {"started": True}


@pytest.fixture
async def client(ledger_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_common_routes(app, _ready)  # the runtime's error mapping, as in the service
    app.include_router(build_router(LedgerApi(database=lambda: ledger_db)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
        yield http


@pytest.fixture
async def booked(ledger_db: Database) -> None:
    handle = handlers()
    euro = order_placed("o-eur", [line(2000, 2, commission_bps=1000)], platform_fee_bps=500)
    yen = order_placed("o-jpy", [line(1999, 1, commission_bps=1500, currency="JPY")])
    async with ledger_db.transaction() as conn:
        await handle.on_order_placed(wrap(euro), conn)
        await handle.on_order_placed(wrap(yen), conn)
    async with ledger_db.transaction() as conn:
        await handle.on_order_refunded(wrap(order_refunded(euro, "r1", 1000, 1000)), conn)


@pytest.mark.usefixtures("booked")
async def test_a_creators_accounts_carry_balances_per_currency(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/accounts", params={"owner_type": "creator", "owner_id": "creator-1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["next_after"] is None
    by_currency = {a["currency"]: a for a in body["accounts"]}
    # EUR: 400 accrued on 4000, a quarter refunded; JPY: 299 on 1999.
    assert by_currency["EUR"]["balance_minor"] == -300
    assert by_currency["EUR"]["balance"] == "-3.00 EUR"
    assert by_currency["EUR"]["normal_side"] == "credit"
    assert by_currency["EUR"]["entry_count"] == 2
    assert by_currency["JPY"]["balance_minor"] == -299
    assert by_currency["JPY"]["balance"] == "-299 JPY"


@pytest.mark.usefixtures("booked")
async def test_entries_come_a_page_at_a_time(client: httpx.AsyncClient) -> None:
    accounts = (await client.get("/accounts", params={"owner_type": "platform"})).json()
    cash_eur = next(
        a for a in accounts["accounts"] if a["kind"] == "cash" and a["currency"] == "EUR"
    )
    first = (await client.get(f"/accounts/{cash_eur['id']}/entries", params={"limit": 1})).json()
    assert first["account"]["balance_minor"] == 3000
    assert [e["amount_minor"] for e in first["entries"]] == [4000]
    assert first["entries"][0]["transaction_kind"] == "sale"
    assert first["next_after"] == first["entries"][0]["id"]
    second = (
        await client.get(
            f"/accounts/{cash_eur['id']}/entries",
            params={"limit": 1, "after": first["next_after"]},
        )
    ).json()
    assert [(e["amount_minor"], e["refund_id"]) for e in second["entries"]] == [(-1000, "r1")]
    assert second["next_after"] is None


@pytest.mark.usefixtures("booked")
async def test_an_orders_transactions_show_the_split_and_entries(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/transactions", params={"order_id": "o-eur"})).json()
    sale, refund = body["transactions"]
    assert (sale["kind"], sale["amount_minor"], sale["creator_commission_minor"]) == (
        "sale",
        4000,
        400,
    )
    assert (sale["seller_proceeds_minor"], sale["platform_fee_minor"]) == (3400, 200)
    assert sum(e["amount_minor"] for e in sale["entries"]) == 0
    assert (refund["kind"], refund["refund_id"], refund["amount_minor"]) == ("refund", "r1", 1000)
    assert {(e["owner_type"], e["kind"]): e["amount_minor"] for e in refund["entries"]} == {
        ("platform", "cash"): -1000,
        ("seller", "payable"): 850,
        ("creator", "payable"): 100,
        ("platform", "fee_revenue"): 50,
    }
    empty = (await client.get("/transactions", params={"order_id": "o-none"})).json()
    assert empty == {"order_id": "o-none", "transactions": []}


@pytest.mark.usefixtures("booked")
async def test_trial_balance_is_zero_per_currency_and_sets_the_gauge(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/ledger/trial-balance")).json()
    assert body == {
        "balanced": True,
        "currencies": [
            {"currency": "EUR", "sum_minor": 0, "transactions": 2, "entries": 8,
             "imbalanced_transactions": 0},
            {"currency": "JPY", "sum_minor": 0, "transactions": 1, "entries": 4,
             "imbalanced_transactions": 0},
        ],
    }  # fmt: skip
    gauge = REGISTRY.get_sample_value("vitrine_ledger_imbalance_minor", {"currency": "JPY"})
    assert gauge == 0.0
    metrics = (await client.get("/metrics")).text
    assert 'vitrine_ledger_imbalance_minor{currency="EUR"} 0.0' in metrics


async def test_errors_speak_the_runtime_format(client: httpx.AsyncClient) -> None:
    missing = await client.get("/accounts/987654/entries")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "no account 987654"}
    assert (await client.get("/accounts/987654")).status_code == 404
    bad = await client.get("/accounts", params={"owner_type": "bank"})
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_request"
    assert (await client.get("/transactions")).status_code == 422
    assert (await client.get("/accounts", params={"limit": 0})).status_code == 422


async def test_empty_ledger_is_balanced(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ledger/trial-balance")).json() == {
        "balanced": True,
        "currencies": [],
    }
    assert (await client.get("/accounts")).json() == {"accounts": [], "next_after": None}


def test_the_service_app_mounts_the_ledger_routes() -> None:
    app = create_app(CommissionSettings())
    # Included routers are not listed in app.routes on this FastAPI; the schema has them.
    paths = set(app.openapi()["paths"])
    assert paths == {
        "/accounts",
        "/accounts/{account_id}",
        "/accounts/{account_id}/entries",
        "/transactions",
        "/ledger/trial-balance",
        "/payouts",
        "/payouts/runs",
        "/payouts/runs/{period}",
    }
