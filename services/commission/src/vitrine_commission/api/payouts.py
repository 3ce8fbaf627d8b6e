"""Payout HTTP API: run a period's payouts (an operator's action), list payouts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vitrine_commission.adapters import repository
from vitrine_commission.domain import OwnerType
from vitrine_commission.payout_runs import (
    PayoutDefaults,
    PayoutRunRequest,
    PayoutRunResult,
    run_payouts,
)
from vitrine_runtime.db import Database
from vitrine_runtime.errors import NotFoundError
from vitrine_schemas.money import Money

MAX_PAGE = 500


class PayoutRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: str = Field(
        min_length=1, max_length=64, description="the run's label, e.g. 2025-01; runs once"
    )
    hold_seconds: float | None = Field(
        None, ge=0, description="earnings count once older than this; default: the setting"
    )
    min_amounts: dict[str, int] | None = Field(
        None,
        description='least payout per currency in minor units, e.g. {"EUR": 2000};'
        " other currencies: PAYOUT_MINIMUM_MAJOR units",
    )
    as_of: AwareDatetime | None = Field(None, description="default now; never in the future")


class PayoutOut(BaseModel):
    payout_id: uuid.UUID
    run_id: uuid.UUID
    period: str
    account_id: int
    owner_type: OwnerType
    owner_id: str
    currency: str
    amount_minor: int
    amount: str = Field(description="for people, e.g. '12.34 EUR'")
    transaction_id: uuid.UUID
    created_at: datetime


class CurrencyTotalOut(BaseModel):
    currency: str
    payouts: int
    amount_minor: int


class PayoutRunOut(BaseModel):
    run_id: uuid.UUID
    period: str
    as_of: datetime
    cutoff: datetime = Field(description="earnings booked after this wait for a later run")
    hold_seconds: float
    min_amounts: dict[str, int]
    replayed: bool = Field(description="true when the period had run before: nothing new paid")
    totals: list[CurrencyTotalOut]
    payouts: list[PayoutOut]


class PayoutsPage(BaseModel):
    payouts: list[PayoutOut]
    next_after: int | None


@dataclass(frozen=True, slots=True)
class PayoutsApi:
    database: Callable[[], Database]
    defaults: PayoutDefaults


def build_payouts_router(api: PayoutsApi) -> APIRouter:
    router = APIRouter(tags=["payouts"])

    @router.post("/payouts/runs", status_code=201, response_model=PayoutRunOut)
    async def run(body: PayoutRunIn, response: Response) -> PayoutRunOut:
        """Pay every seller and creator whose held payable reaches the minimum: one
        payout per account and period, as a balanced ledger transaction (debit payable,
        credit payouts_clearing). 201 for a new run; 200 with `replayed` for a period
        that ran before with the same terms; 409 for other terms."""
        result = await run_payouts(
            api.database(),
            PayoutRunRequest(
                period=body.period,
                hold=timedelta(seconds=body.hold_seconds)
                if body.hold_seconds is not None
                else None,
                minimums_minor=body.min_amounts,
                as_of=body.as_of,
            ),
            api.defaults,
        )
        if result.replayed:
            response.status_code = 200
        return _run(result)

    @router.get("/payouts/runs/{period}", response_model=PayoutRunOut)
    async def get_run(period: str) -> PayoutRunOut:
        async with api.database().pool.acquire() as conn:
            found = await repository.find_payout_run(conn, period)
            if found is None:
                raise NotFoundError(f"no payout run for period {period}")
            payouts = await repository.list_payouts(conn, run_id=found.id, limit=1_000_000)
        return _run(PayoutRunResult(found, payouts, replayed=True))

    @router.get("/payouts", response_model=PayoutsPage)
    async def list_payouts(
        owner_id: Annotated[str | None, Query(min_length=1)] = None,
        owner_type: OwnerType | None = None,
        period: Annotated[str | None, Query(min_length=1)] = None,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> PayoutsPage:
        """Payouts in the order they were made, by owner and period."""
        async with api.database().pool.acquire() as conn:
            rows = await repository.list_payouts(
                conn,
                owner_type=owner_type,
                owner_id=owner_id,
                period=period,
                after=after,
                limit=limit + 1,
            )
        page = rows[:limit]
        return PayoutsPage(
            payouts=[_payout(row) for row in page],
            next_after=page[-1].seq if len(rows) > limit else None,
        )

    return router


def _payout(row: repository.PayoutRecord) -> PayoutOut:
    return PayoutOut(
        payout_id=row.id,
        run_id=row.run_id,
        period=row.period,
        account_id=row.account_id,
        owner_type=row.owner_type,
        owner_id=row.owner_id,
        currency=row.currency,
        amount_minor=row.amount_minor,
        amount=str(Money(amount_minor=row.amount_minor, currency=row.currency)),
        transaction_id=row.transaction_id,
        created_at=row.created_at,
    )


def _run(result: PayoutRunResult) -> PayoutRunOut:
    totals: dict[str, CurrencyTotalOut] = {}
    for payout in result.payouts:
        total = totals.setdefault(
            payout.currency, CurrencyTotalOut(currency=payout.currency, payouts=0, amount_minor=0)
        )
        total.payouts += 1
        total.amount_minor += payout.amount_minor
    run = result.run
    return PayoutRunOut(
        run_id=run.id,
        period=run.period,
        as_of=run.as_of,
        cutoff=run.cutoff,
        hold_seconds=run.hold_seconds,
        min_amounts=run.minimums,
        replayed=result.replayed,
        totals=[totals[c] for c in sorted(totals)],
        payouts=[_payout(p) for p in result.payouts],
    )
