"""The ledger's read API. Postings only come from events, never from HTTP (payouts, an
operator's action, have their own router in `api.payouts`).

Routes get the database through `LedgerApi`, a small object, so tests mount the router on
a bare FastAPI app with a migrated `Database` and no broker.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from vitrine_commission import metrics
from vitrine_commission.adapters import repository
from vitrine_commission.domain import AccountKind, OwnerType, Side, TransactionKind
from vitrine_runtime.db import Database
from vitrine_runtime.errors import NotFoundError
from vitrine_schemas.money import Money

MAX_PAGE = 500
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
After = Annotated[int, Query(ge=0, description="cursor: the `next_after` of the previous page")]


# --- response models --------------------------------------------------------------------


class AccountOut(BaseModel):
    id: int
    owner_type: OwnerType
    owner_id: str
    kind: AccountKind
    currency: str
    normal_side: Side = Field(
        description="where the balance normally sits: a payable's credit balance is owed"
    )
    balance_minor: int = Field(description="sum of the account's entries: debit +, credit -")
    balance: str = Field(description="the balance for people, e.g. '-12.34 EUR'")
    entry_count: int
    created_at: datetime


class AccountsPage(BaseModel):
    accounts: list[AccountOut]
    next_after: int | None = Field(description="pass as `after` for the next page; null at the end")


class EntryOut(BaseModel):
    id: int
    transaction_id: uuid.UUID
    order_id: str | None = Field(description="null for a payout")
    transaction_kind: TransactionKind
    refund_id: str | None
    amount_minor: int = Field(description="debit +, credit -")
    currency: str
    created_at: datetime


class EntriesPage(BaseModel):
    account: AccountOut
    entries: list[EntryOut]
    next_after: int | None


class TransactionEntryOut(BaseModel):
    id: int
    account_id: int
    owner_type: OwnerType
    owner_id: str
    kind: AccountKind
    amount_minor: int = Field(description="debit +, credit -")


class TransactionOut(BaseModel):
    id: uuid.UUID
    order_id: str
    kind: TransactionKind
    refund_id: str | None
    currency: str
    amount_minor: int = Field(description="gross of a sale, amount of a refund")
    seller_proceeds_minor: int
    creator_commission_minor: int
    platform_fee_minor: int
    event_id: uuid.UUID = Field(description="the order event this transaction booked")
    created_at: datetime
    entries: list[TransactionEntryOut]


class TransactionsOut(BaseModel):
    order_id: str
    transactions: list[TransactionOut]


class CurrencyTrialBalanceOut(BaseModel):
    currency: str
    sum_minor: int = Field(description="sum of every entry in the currency; must be 0")
    transactions: int
    entries: int
    imbalanced_transactions: int = Field(description="transactions whose entries do not sum to 0")


class TrialBalanceOut(BaseModel):
    balanced: bool = Field(description="every currency sums to 0 and no transaction is off")
    currencies: list[CurrencyTrialBalanceOut]


# --- routes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerApi:
    """What the routes need: the database, fetched per request (it exists once started)."""

    database: Callable[[], Database]

    @asynccontextmanager
    async def read(self) -> AsyncIterator[asyncpg.Connection]:
        # One snapshot per request, so a page's balances and entries agree with each other.
        async with (
            self.database().pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn


def build_router(api: LedgerApi) -> APIRouter:
    router = APIRouter(tags=["ledger"])

    @router.get("/accounts", response_model=AccountsPage)
    async def list_accounts(
        owner_type: OwnerType | None = None,
        owner_id: Annotated[str | None, Query(min_length=1)] = None,
        after: After = 0,
        limit: Limit = 100,
    ) -> AccountsPage:
        """Accounts with their balances (one account per currency), by owner."""
        async with api.read() as conn:
            rows = await repository.list_accounts(
                conn, owner_type=owner_type, owner_id=owner_id, after=after, limit=limit + 1
            )
        page = rows[:limit]
        return AccountsPage(
            accounts=[_account(row) for row in page],
            next_after=page[-1].id if len(rows) > limit else None,
        )

    @router.get("/accounts/{account_id}", response_model=AccountOut)
    async def get_account(account_id: int) -> AccountOut:
        async with api.read() as conn:
            row = await repository.get_account(conn, account_id)
        if row is None:
            raise NotFoundError(f"no account {account_id}")
        return _account(row)

    @router.get("/accounts/{account_id}/entries", response_model=EntriesPage)
    async def list_entries(account_id: int, after: After = 0, limit: Limit = 100) -> EntriesPage:
        """An account's entries in booking order, a page at a time."""
        async with api.read() as conn:
            account = await repository.get_account(conn, account_id)
            if account is None:
                raise NotFoundError(f"no account {account_id}")
            rows = await repository.list_entries(conn, account_id, after=after, limit=limit + 1)
        page = rows[:limit]
        return EntriesPage(
            account=_account(account),
            entries=[
                EntryOut(
                    id=row.id,
                    transaction_id=row.transaction_id,
                    order_id=row.order_id,
                    transaction_kind=row.transaction_kind,
                    refund_id=row.refund_id,
                    amount_minor=row.amount_minor,
                    currency=row.currency,
                    created_at=row.created_at,
                )
                for row in page
            ],
            next_after=page[-1].id if len(rows) > limit else None,
        )

    @router.get("/transactions", response_model=TransactionsOut)
    async def list_transactions(
        order_id: Annotated[str, Query(min_length=1)],
    ) -> TransactionsOut:
        """An order's sale and refunds, each with its split and entries."""
        async with api.read() as conn:
            rows = await repository.list_transactions(conn, order_id)
        return TransactionsOut(order_id=order_id, transactions=[_transaction(r) for r in rows])

    @router.get("/ledger/trial-balance", response_model=TrialBalanceOut)
    async def trial_balance() -> TrialBalanceOut:
        """Per currency, the sum of all entries (0 in a sound ledger) and the counts."""
        async with api.read() as conn:
            rows = await repository.trial_balance(conn)
        for row in rows:
            metrics.LEDGER_IMBALANCE.labels(row.currency).set(row.sum_minor)
        return TrialBalanceOut(
            balanced=all(r.sum_minor == 0 and r.imbalanced_transactions == 0 for r in rows),
            currencies=[
                CurrencyTrialBalanceOut(
                    currency=r.currency,
                    sum_minor=r.sum_minor,
                    transactions=r.transactions,
                    entries=r.entries,
                    imbalanced_transactions=r.imbalanced_transactions,
                )
                for r in rows
            ],
        )

    return router


def _account(row: repository.AccountBalance) -> AccountOut:
    ref = row.ref
    return AccountOut(
        id=row.id,
        owner_type=ref.owner_type,
        owner_id=ref.owner_id,
        kind=ref.kind,
        currency=ref.currency,
        normal_side=ref.normal_side,
        balance_minor=row.balance_minor,
        balance=str(Money(amount_minor=row.balance_minor, currency=ref.currency)),
        entry_count=row.entry_count,
        created_at=row.created_at,
    )


def _transaction(row: repository.TransactionRecord) -> TransactionOut:
    return TransactionOut(
        id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        refund_id=row.refund_id,
        currency=row.currency,
        amount_minor=row.amount_minor,
        seller_proceeds_minor=row.shares.seller_proceeds,
        creator_commission_minor=row.shares.creator_commission,
        platform_fee_minor=row.shares.platform_fee,
        event_id=row.event_id,
        created_at=row.created_at,
        entries=[
            TransactionEntryOut(
                id=e.id,
                account_id=e.account_id,
                owner_type=e.account.owner_type,
                owner_id=e.account.owner_id,
                kind=e.account.kind,
                amount_minor=e.amount_minor,
            )
            for e in row.entries
        ],
    )
