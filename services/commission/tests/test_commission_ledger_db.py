"""The ledger's database guarantees, on real PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg
import pytest
from commission_testkit import line, order_placed, order_refunded

from vitrine_commission.adapters import repository
from vitrine_commission.domain import (
    AccountRef,
    AttributionPolicy,
    Entry,
    LedgerTransaction,
    Posting,
    Shares,
    book_refund,
    book_sale,
)
from vitrine_commission.domain.accounts import platform_cash, seller_payable
from vitrine_runtime.db import Database
from vitrine_schemas.events import ShopKind

POLICY = AttributionPolicy()

# One entry of a ledger transaction in EUR, the way the tests below post them row by row.
INSERT_EUR_ENTRY = (
    "INSERT INTO entries (transaction_id, account_id, amount_minor, currency)"
    " VALUES ($1, $2, $3, 'EUR')"
)


async def _open_accounts(conn: asyncpg.Connection) -> tuple[int, int]:
    ids = await repository.account_ids(
        conn, [platform_cash("EUR"), seller_payable("seller-1", "EUR")]
    )
    return ids[platform_cash("EUR")], ids[seller_payable("seller-1", "EUR")]


async def _insert_transaction(conn: asyncpg.Connection, tx_id: uuid.UUID, order_id: str) -> None:
    await conn.execute(
        "INSERT INTO transactions (id, order_id, kind, currency, amount_minor,"
        " seller_proceeds_minor, creator_commission_minor, platform_fee_minor, event_id)"
        " VALUES ($1, $2, 'sale', 'EUR', 100, 100, 0, 0, $3)",
        tx_id,
        order_id,
        uuid.uuid4(),
    )


async def test_an_unbalanced_transaction_is_rejected_at_commit(ledger_db: Database) -> None:
    tx_id = uuid.uuid4()

    async def post_unbalanced() -> None:
        async with ledger_db.transaction() as conn:
            cash, seller = await _open_accounts(conn)
            await _insert_transaction(conn, tx_id, "o-bad")
            await conn.execute(INSERT_EUR_ENTRY, tx_id, cash, 100)
            await conn.execute(INSERT_EUR_ENTRY, tx_id, seller, -99)  # deferred: no error yet

    with pytest.raises(asyncpg.CheckViolationError, match="does not balance: 1 EUR off"):
        await post_unbalanced()  # fails when the transaction commits
    async with ledger_db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM transactions") == 0
        assert await conn.fetchval("SELECT count(*) FROM entries") == 0


async def test_a_balanced_transaction_inserted_row_by_row_commits(ledger_db: Database) -> None:
    tx_id = uuid.uuid4()
    async with ledger_db.transaction() as conn:
        cash, seller = await _open_accounts(conn)
        await _insert_transaction(conn, tx_id, "o-ok")
        await conn.execute(INSERT_EUR_ENTRY, tx_id, cash, 100)
        await conn.execute(INSERT_EUR_ENTRY, tx_id, seller, -100)
    async with ledger_db.transaction() as conn:
        assert [r.sum_minor for r in await repository.trial_balance(conn)] == [0]


async def test_a_bulk_insert_with_one_unbalanced_transaction_is_rejected(
    ledger_db: Database,
) -> None:
    good, bad = uuid.uuid4(), uuid.uuid4()

    async def post_both() -> None:
        async with ledger_db.transaction() as conn:
            cash, seller = await _open_accounts(conn)
            await _insert_transaction(conn, good, "o-good")
            await _insert_transaction(conn, bad, "o-bad")
            await conn.execute(
                "INSERT INTO entries (transaction_id, account_id, amount_minor, currency)"
                " SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[])",
                [good, good, bad, bad],
                [cash, seller, cash, seller],
                [100, -100, 100, -98],
                ["EUR"] * 4,
            )

    with pytest.raises(asyncpg.CheckViolationError, match=f"{bad} does not balance"):
        await post_both()
    async with ledger_db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM entries") == 0


async def test_an_entry_added_later_to_a_committed_transaction_is_checked(
    ledger_db: Database,
) -> None:
    tx_id = uuid.uuid4()
    async with ledger_db.transaction() as conn:
        cash, seller = await _open_accounts(conn)
        await _insert_transaction(conn, tx_id, "o-later")
        await conn.execute(INSERT_EUR_ENTRY, tx_id, cash, 100)
        await conn.execute(INSERT_EUR_ENTRY, tx_id, seller, -100)
    with pytest.raises(asyncpg.CheckViolationError, match="does not balance: 5 EUR off"):
        async with ledger_db.transaction() as conn:
            await conn.execute(INSERT_EUR_ENTRY, tx_id, cash, 5)
    async with ledger_db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM entries") == 2
        # Nothing stays parked for the commit-time check once transactions end.
        assert await conn.fetchval("SELECT count(*) FROM ledger_unbalanced") == 0


async def test_a_statement_that_balances_by_itself_does_not_clear_an_earlier_one(
    ledger_db: Database,
) -> None:
    # Each INSERT parks the transactions its own rows leave off balance (migration 004);
    # the commit-time check then sums all of a parked transaction's entries.
    tx_id = uuid.uuid4()

    async def post() -> None:
        async with ledger_db.transaction() as conn:
            cash, seller = await _open_accounts(conn)
            await _insert_transaction(conn, tx_id, "o-two-statements")
            await conn.execute(INSERT_EUR_ENTRY, tx_id, cash, 100)  # off by 100: parked
            await conn.executemany(INSERT_EUR_ENTRY, [(tx_id, cash, 5), (tx_id, seller, -5)])
            await conn.execute(
                "INSERT INTO entries (transaction_id, account_id, amount_minor, currency)"
                " SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[])",
                tx_id,
                [cash, seller],
                [7, -7],
                ["EUR", "EUR"],
            )  # balanced by itself

    with pytest.raises(asyncpg.CheckViolationError, match="does not balance: 100 EUR off"):
        await post()
    async with ledger_db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM entries") == 0


def _unchecked(transaction: LedgerTransaction, *legs: tuple[AccountRef, int]) -> LedgerTransaction:
    """The transaction with other entries, past Posting's own balance check: what a bug in
    the rules could hand the repository."""
    posting = object.__new__(Posting)
    object.__setattr__(posting, "entries", tuple(Entry(ref, amount) for ref, amount in legs))
    return dataclasses.replace(transaction, posting=posting)


async def test_the_bulk_path_rejects_an_unbalanced_posting(ledger_db: Database) -> None:
    good = book_sale(order_placed("o-good"), POLICY)
    booked, sale = book_sale(order_placed("o-bad"), POLICY)
    bad = _unchecked(
        sale, (platform_cash("EUR"), 1000), (seller_payable(booked.seller_id, "EUR"), -999)
    )
    with pytest.raises(asyncpg.CheckViolationError, match=f"{sale.id} does not balance: 1 EUR"):
        async with ledger_db.transaction() as conn:
            await repository.record_sales(
                conn, [(*good, uuid.uuid4()), (booked, bad, uuid.uuid4())]
            )
    async with ledger_db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM transactions") == 0
        assert await conn.fetchval("SELECT count(*) FROM entries") == 0
        assert await conn.fetchval("SELECT count(*) FROM orders") == 0


async def test_the_bulk_path_books_what_the_single_path_books(ledger_db: Database) -> None:
    orders = [
        order_placed("o-a", [line(1999, 3, commission_bps=1250)]),
        order_placed("o-b", [line(12345, currency="KWD")], creator_id=None),
        order_placed("o-c", [line(1500, currency="JPY")], shop_kind=ShopKind.FIRST_PARTY),
    ]
    booked = [book_sale(order, POLICY) for order in orders]
    event_ids = [uuid.uuid4() for _ in orders]
    async with ledger_db.transaction() as conn:
        await repository.record_sales(
            conn, [(b, s, e) for (b, s), e in zip(booked, event_ids, strict=True)]
        )
        for (order_booked, sale), event_id in zip(booked, event_ids, strict=True):
            [record] = await repository.list_transactions(conn, sale.order_id or "")
            assert (record.id, record.kind, record.event_id) == (sale.id, sale.kind, event_id)
            assert (record.currency, record.shares) == (sale.currency, sale.shares)
            # In posting order: COPY keeps the rows' order, so the entry ids follow it.
            assert [(e.account, e.amount_minor) for e in record.entries] == [
                (e.account, e.amount_minor) for e in sale.posting.entries
            ]
            found = await repository.find_order(conn, order_booked.order_id)
            assert found == order_booked


async def test_set_constraints_immediate_checks_a_parked_transaction_now(
    ledger_db: Database,
) -> None:
    tx_id = uuid.uuid4()
    async with ledger_db.transaction() as conn:
        cash, _ = await _open_accounts(conn)
        await _insert_transaction(conn, tx_id, "o-now")
        await conn.execute(
            "INSERT INTO entries (transaction_id, account_id, amount_minor, currency)"
            " VALUES ($1, $2, 100, 'EUR')",
            tx_id,
            cash,
        )
        with pytest.raises(asyncpg.CheckViolationError, match="does not balance: 100 EUR off"):
            await conn.execute("SET CONSTRAINTS entries_balanced IMMEDIATE")


async def test_entries_and_transactions_cannot_be_changed(ledger_db: Database) -> None:
    booked, sale = book_sale(order_placed(), POLICY)
    async with ledger_db.transaction() as conn:
        await repository.record_sale(conn, booked, sale, uuid.uuid4())
    statements = [
        "UPDATE entries SET amount_minor = amount_minor * 2",
        "DELETE FROM entries",
        "TRUNCATE entries CASCADE",
        "UPDATE transactions SET amount_minor = 0",
        "DELETE FROM transactions",
    ]
    for statement in statements:
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            async with ledger_db.transaction() as conn:
                await conn.execute(statement)
    async with ledger_db.transaction() as conn:
        assert await conn.fetchval("SELECT count(*) FROM entries") == 4


async def test_an_entry_must_be_in_its_accounts_currency(ledger_db: Database) -> None:
    tx_id = uuid.uuid4()
    async with ledger_db.transaction() as conn:
        cash, _ = await _open_accounts(conn)
        await _insert_transaction(conn, tx_id, "o-fx")  # no entries yet: balanced
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        async with ledger_db.transaction() as conn:
            await conn.execute(
                "INSERT INTO entries (transaction_id, account_id, amount_minor, currency)"
                " VALUES ($1, $2, 100, 'JPY')",
                tx_id,
                cash,
            )


async def test_a_second_sale_of_the_same_order_is_rejected(ledger_db: Database) -> None:
    booked, sale = book_sale(order_placed(), POLICY)
    async with ledger_db.transaction() as conn:
        await repository.record_sale(conn, booked, sale, uuid.uuid4())
    with pytest.raises(asyncpg.UniqueViolationError):
        async with ledger_db.transaction() as conn:
            # A different id, so that only the (order, kind) key can catch it.
            await _insert_transaction(conn, uuid.uuid4(), booked.order_id)


async def test_a_refund_id_is_booked_once(ledger_db: Database) -> None:
    order = order_placed()
    booked, sale = book_sale(order, POLICY)
    refund = book_refund(booked, Shares.zero(), order_refunded(order, "r1", 100, 100))
    async with ledger_db.transaction() as conn:
        await repository.record_sale(conn, booked, sale, uuid.uuid4())
        await repository.record_transaction(conn, refund, uuid.uuid4())
    with pytest.raises(asyncpg.UniqueViolationError):
        async with ledger_db.transaction() as conn:
            await repository.record_transaction(conn, refund, uuid.uuid4())


async def test_booked_order_round_trips(ledger_db: Database) -> None:
    order = order_placed(lines=[line(2500, 2, commission_bps=1200)], shop_kind=ShopKind.FIRST_PARTY)
    booked, sale = book_sale(order, POLICY)
    async with ledger_db.transaction() as conn:
        await repository.record_sale(conn, booked, sale, uuid.uuid4())
        assert await repository.find_order(conn, order.order_id, for_update=True) == booked
        assert await repository.reversed_so_far(conn, order.order_id) == Shares.zero()
        assert await repository.find_order(conn, "o-missing") is None


async def test_accounts_open_once_per_owner_kind_and_currency(ledger_db: Database) -> None:
    async with ledger_db.transaction() as conn:
        first = await repository.account_ids(conn, [platform_cash("EUR"), platform_cash("JPY")])
        again = await repository.account_ids(conn, [platform_cash("JPY"), platform_cash("EUR")])
        assert first == again
        assert len(set(first.values())) == 2
        assert await conn.fetchval("SELECT count(*) FROM accounts") == 2


async def test_trial_balance_counts_an_imbalance_that_bypassed_the_trigger(
    ledger_db: Database,
) -> None:
    # Replica mode skips ordinary triggers, as a restore or logical replication would: the
    # trial balance recomputes balance from the entries, so it still sees the hole.
    tx_id = uuid.uuid4()
    async with ledger_db.transaction() as conn:
        cash, _ = await _open_accounts(conn)
        await conn.execute("SET LOCAL session_replication_role = replica")
        await _insert_transaction(conn, tx_id, "o-hole")
        await conn.execute(
            "INSERT INTO entries (transaction_id, account_id, amount_minor, currency)"
            " VALUES ($1, $2, 7, 'EUR')",
            tx_id,
            cash,
        )
    async with ledger_db.transaction() as conn:
        [row] = await repository.trial_balance(conn)
    assert (row.currency, row.sum_minor, row.imbalanced_transactions) == ("EUR", 7, 1)
    assert (row.transactions, row.entries) == (1, 1)
