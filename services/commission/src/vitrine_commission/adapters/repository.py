"""The ledger in PostgreSQL (asyncpg): postings in, balances and statements out.

Write functions take the caller's connection, so a posting commits with the inbox row and
the outbox event of the same handler. Amounts are bigint minor units end to end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from vitrine_commission.domain.accounts import AccountKind, AccountRef, OwnerType
from vitrine_commission.domain.payouts import PayableSnapshot, PlannedPayout
from vitrine_commission.domain.rules import BookedOrder, LedgerTransaction, Shares, TransactionKind
from vitrine_schemas.events import ShopKind

# --- read models ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountBalance:
    id: int
    ref: AccountRef
    balance_minor: int  # sum of the account's entries: debit +, credit -
    entry_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One entry of an account, with the transaction it belongs to."""

    id: int
    transaction_id: uuid.UUID
    order_id: str | None  # None for a payout
    transaction_kind: TransactionKind
    refund_id: str | None
    amount_minor: int
    currency: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TransactionEntry:
    id: int
    account_id: int
    account: AccountRef
    amount_minor: int


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    id: uuid.UUID
    order_id: str
    kind: TransactionKind
    refund_id: str | None
    currency: str
    shares: Shares
    event_id: uuid.UUID
    created_at: datetime
    entries: tuple[TransactionEntry, ...]

    @property
    def amount_minor(self) -> int:
        return self.shares.total


@dataclass(frozen=True, slots=True)
class CurrencyTrialBalance:
    currency: str
    sum_minor: int  # sum of every entry in the currency: 0 in a sound ledger
    transactions: int
    entries: int
    imbalanced_transactions: int


# --- writes -----------------------------------------------------------------------------


async def sale_exists(conn: asyncpg.Connection, order_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM transactions WHERE order_id = $1 AND kind = 'sale')",
            order_id,
        )
    )


async def refund_exists(conn: asyncpg.Connection, order_id: str, refund_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM transactions"
            " WHERE order_id = $1 AND kind = 'refund' AND refund_id = $2)",
            order_id,
            refund_id,
        )
    )


async def find_order(
    conn: asyncpg.Connection, order_id: str, *, for_update: bool = False
) -> BookedOrder | None:
    """The booked order; `for_update` locks it so that its refunds book one at a time."""
    row = await conn.fetchrow(
        "SELECT o.order_id, o.shop_id, o.seller_id, o.shop_kind, o.creator_id, o.currency,"
        " t.seller_proceeds_minor, t.creator_commission_minor, t.platform_fee_minor"
        " FROM orders o JOIN transactions t ON t.id = o.sale_transaction_id"
        " WHERE o.order_id = $1" + (" FOR UPDATE OF o" if for_update else ""),
        order_id,
    )
    if row is None:
        return None
    return BookedOrder(
        order_id=row["order_id"],
        shop_id=row["shop_id"],
        seller_id=row["seller_id"],
        shop_kind=ShopKind(row["shop_kind"]),
        creator_id=row["creator_id"],
        currency=row["currency"],
        accrued=_shares(row),
    )


async def reversed_so_far(conn: asyncpg.Connection, order_id: str) -> Shares:
    """What the order's refunds have reversed so far, part by part."""
    row = await conn.fetchrow(
        "SELECT coalesce(sum(seller_proceeds_minor), 0)::bigint AS seller_proceeds_minor,"
        " coalesce(sum(creator_commission_minor), 0)::bigint AS creator_commission_minor,"
        " coalesce(sum(platform_fee_minor), 0)::bigint AS platform_fee_minor"
        " FROM transactions WHERE order_id = $1 AND kind = 'refund'",
        order_id,
    )
    assert row is not None  # an aggregate always returns one row
    return _shares(row)


async def record_sale(
    conn: asyncpg.Connection, order: BookedOrder, sale: LedgerTransaction, event_id: uuid.UUID
) -> None:
    """Book a sale and remember the order's parties for its refunds."""
    if sale.kind is not TransactionKind.SALE or sale.order_id != order.order_id:
        raise ValueError("record_sale takes the sale transaction of the order")
    await record_transaction(conn, sale, event_id)
    await conn.execute(
        f"INSERT INTO orders ({', '.join(_ORDER_COLUMNS)}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        *_order_row(order, sale),
    )


def _order_row(order: BookedOrder, sale: LedgerTransaction) -> tuple[object, ...]:
    """An `orders` row, in the order of `_ORDER_COLUMNS`."""
    return (
        order.order_id,
        sale.id,
        order.shop_id,
        order.seller_id,
        order.shop_kind.value,
        order.creator_id,
        order.currency,
    )


async def record_transaction(
    conn: asyncpg.Connection, transaction: LedgerTransaction, event_id: uuid.UUID | None
) -> None:
    """Insert a transaction and its entries; raises if it does not balance.

    The unique (order, kind, refund) key rejects a second booking of the same sale or
    refund.
    """
    shares = transaction.shares
    await conn.execute(
        "INSERT INTO transactions (id, order_id, kind, refund_id, currency, amount_minor,"
        " seller_proceeds_minor, creator_commission_minor, platform_fee_minor, event_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        transaction.id,
        transaction.order_id,
        transaction.kind.value,
        transaction.refund_id,
        transaction.currency,
        transaction.amount_minor,
        shares.seller_proceeds,
        shares.creator_commission,
        shares.platform_fee,
        event_id,
    )
    entries = transaction.posting.entries
    if not entries:  # a zero-total order moves no money
        return
    ids = await account_ids(conn, [entry.account for entry in entries])
    await conn.execute(
        "INSERT INTO entries (transaction_id, account_id, amount_minor, currency)"
        " SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[])",
        transaction.id,
        [ids[entry.account] for entry in entries],
        [entry.amount_minor for entry in entries],
        [entry.currency for entry in entries],
    )
    # Run the deferred balance check now rather than at commit, so a bad posting fails
    # here, inside the handler that made it, before its event and metrics go out.
    await conn.execute("SET CONSTRAINTS entries_balanced IMMEDIATE")
    await conn.execute("SET CONSTRAINTS entries_balanced DEFERRED")


async def existing_sales(conn: asyncpg.Connection, order_ids: Sequence[str]) -> set[str]:
    """Which of the orders already have their sale booked."""
    rows = await conn.fetch(
        "SELECT order_id FROM transactions WHERE order_id = ANY($1::text[]) AND kind = 'sale'",
        list(order_ids),
    )
    return {row["order_id"] for row in rows}


async def record_sales(
    conn: asyncpg.Connection,
    sales: Sequence[tuple[BookedOrder, LedgerTransaction, uuid.UUID]],
) -> None:
    """`record_sale` for many orders, in a few statements (the batch consumer's path)."""
    if not sales:
        return
    for order, sale, _ in sales:
        if sale.kind is not TransactionKind.SALE or sale.order_id != order.order_id:
            raise ValueError("record_sales takes the sale transaction of each order")
    await record_transactions(conn, [(sale, event_id) for _, sale, event_id in sales])
    await conn.copy_records_to_table(
        "orders",
        columns=_ORDER_COLUMNS,
        records=[_order_row(order, sale) for order, sale, _ in sales],
    )


# The bulk writes use COPY (binary): one round trip like an INSERT ... SELECT unnest(...),
# but the rows are encoded as they are instead of as one array per column (asyncpg checks
# every array element's type in Python), and the server skips the unnest. COPY fires the
# same constraints and triggers as INSERT: keys, foreign keys, CHECKs and the per-statement
# balance check of migration 003.
_ORDER_COLUMNS = (
    "order_id",
    "sale_transaction_id",
    "shop_id",
    "seller_id",
    "shop_kind",
    "creator_id",
    "currency",
)
_TRANSACTION_COLUMNS = (
    "id",
    "order_id",
    "kind",
    "refund_id",
    "currency",
    "amount_minor",
    "seller_proceeds_minor",
    "creator_commission_minor",
    "platform_fee_minor",
    "event_id",
)
_ENTRY_COLUMNS = ("transaction_id", "account_id", "amount_minor", "currency")


async def record_transactions(
    conn: asyncpg.Connection, transactions: Sequence[tuple[LedgerTransaction, uuid.UUID | None]]
) -> None:
    """`record_transaction` for many, in a few statements; raises if any does not balance."""
    if not transactions:
        return
    rows = []
    for tx, event_id in transactions:
        shares = tx.shares
        seller, creator, platform = (
            shares.seller_proceeds,
            shares.creator_commission,
            shares.platform_fee,
        )
        rows.append(
            (
                tx.id,
                tx.order_id,
                tx.kind.value,
                tx.refund_id,
                tx.currency,
                seller + creator + platform,
                seller,
                creator,
                platform,
                event_id,
            )
        )
    await conn.copy_records_to_table("transactions", columns=_TRANSACTION_COLUMNS, records=rows)
    entries = [(tx.id, entry) for tx, _ in transactions for entry in tx.posting.entries]
    if not entries:
        return
    ids = await account_ids(conn, [entry.account for _, entry in entries])
    await conn.copy_records_to_table(
        "entries",
        columns=_ENTRY_COLUMNS,
        records=[
            (tx_id, ids[entry.account], entry.amount_minor, entry.account.currency)
            for tx_id, entry in entries
        ],
    )
    await conn.execute("SET CONSTRAINTS entries_balanced IMMEDIATE")
    await conn.execute("SET CONSTRAINTS entries_balanced DEFERRED")


async def account_ids(
    conn: asyncpg.Connection, refs: Iterable[AccountRef]
) -> Mapping[AccountRef, int]:
    """Ids of the accounts, opening those that do not exist yet."""
    by_key = {_ref_key(ref): ref for ref in set(refs)}
    wanted = [by_key[key] for key in sorted(by_key)]  # one insert order everywhere: no deadlocks
    ids: dict[AccountRef, int] = {}
    # Look up first (the common case, no write); insert the missing; look again for any a
    # concurrent transaction opened meanwhile (its row was invisible to the insert).
    for statement in (_SELECT_ACCOUNTS, _INSERT_ACCOUNTS, _SELECT_ACCOUNTS):
        missing = [ref for ref in wanted if ref not in ids]
        if not missing:
            break
        rows = await conn.fetch(statement, *_columns(missing))
        # A returned row is one of the wanted accounts: look it up by its key rather than
        # build (and validate) a new AccountRef per row.
        ids.update({by_key[row[1], row[2], row[3], row[4]]: row[0] for row in rows})
    if len(ids) != len(by_key):
        raise RuntimeError("could not open ledger accounts")
    return ids


_UNNEST = "unnest($1::text[], $2::text[], $3::text[], $4::text[])"
_SELECT_ACCOUNTS = (
    "SELECT id, owner_type, owner_id, kind, currency FROM accounts"
    f" WHERE (owner_type, owner_id, kind, currency) IN (SELECT * FROM {_UNNEST})"
)
_INSERT_ACCOUNTS = (
    "INSERT INTO accounts (owner_type, owner_id, kind, currency)"
    f" SELECT * FROM {_UNNEST} ON CONFLICT DO NOTHING"
    " RETURNING id, owner_type, owner_id, kind, currency"
)


# --- reads ------------------------------------------------------------------------------

_BALANCE_COLUMNS = (
    "id, owner_type, owner_id, kind, currency, created_at, balance_minor, entry_count"
)


async def list_accounts(
    conn: asyncpg.Connection,
    *,
    owner_type: OwnerType | None = None,
    owner_id: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AccountBalance]:
    rows = await conn.fetch(
        f"SELECT {_BALANCE_COLUMNS} FROM account_balances"
        " WHERE ($1::text IS NULL OR owner_type = $1) AND ($2::text IS NULL OR owner_id = $2)"
        " AND id > $3 ORDER BY id LIMIT $4",
        owner_type.value if owner_type else None,
        owner_id,
        after,
        limit,
    )
    return [_balance(row) for row in rows]


async def get_account(conn: asyncpg.Connection, account_id: int) -> AccountBalance | None:
    row = await conn.fetchrow(
        f"SELECT {_BALANCE_COLUMNS} FROM account_balances WHERE id = $1", account_id
    )
    return _balance(row) if row else None


async def list_entries(
    conn: asyncpg.Connection, account_id: int, *, after: int = 0, limit: int = 100
) -> list[StatementLine]:
    """An account's entries in the order they were booked, from after entry id `after`."""
    rows = await conn.fetch(
        "SELECT e.id, e.transaction_id, t.order_id, t.kind, t.refund_id, e.amount_minor,"
        " e.currency, e.created_at"
        " FROM entries e JOIN transactions t ON t.id = e.transaction_id"
        " WHERE e.account_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3",
        account_id,
        after,
        limit,
    )
    return [
        StatementLine(
            id=row["id"],
            transaction_id=row["transaction_id"],
            order_id=row["order_id"],
            transaction_kind=TransactionKind(row["kind"]),
            refund_id=row["refund_id"],
            amount_minor=row["amount_minor"],
            currency=row["currency"],
            created_at=row["created_at"],
        )
        for row in rows
    ]


async def list_transactions(conn: asyncpg.Connection, order_id: str) -> list[TransactionRecord]:
    """An order's transactions, sale first, with their entries."""
    rows = await conn.fetch(
        "SELECT id, order_id, kind, refund_id, currency, seller_proceeds_minor,"
        " creator_commission_minor, platform_fee_minor, event_id, created_at"
        " FROM transactions WHERE order_id = $1"
        " ORDER BY kind = 'refund', created_at, id",
        order_id,
    )
    entry_rows = await conn.fetch(
        "SELECT e.id, e.transaction_id, e.account_id, e.amount_minor,"
        " a.owner_type, a.owner_id, a.kind, a.currency"
        " FROM entries e JOIN accounts a ON a.id = e.account_id"
        " WHERE e.transaction_id = ANY($1::uuid[]) ORDER BY e.id",
        [row["id"] for row in rows],
    )
    by_transaction: dict[uuid.UUID, list[TransactionEntry]] = {}
    for row in entry_rows:
        by_transaction.setdefault(row["transaction_id"], []).append(
            TransactionEntry(
                id=row["id"],
                account_id=row["account_id"],
                account=_ref(row),
                amount_minor=row["amount_minor"],
            )
        )
    return [
        TransactionRecord(
            id=row["id"],
            order_id=row["order_id"],
            kind=TransactionKind(row["kind"]),
            refund_id=row["refund_id"],
            currency=row["currency"],
            shares=_shares(row),
            event_id=row["event_id"],
            created_at=row["created_at"],
            entries=tuple(by_transaction.get(row["id"], ())),
        )
        for row in rows
    ]


async def trial_balance(conn: asyncpg.Connection) -> list[CurrencyTrialBalance]:
    """Per currency: the sum of all entries (0 when sound), counts, unbalanced transactions.

    The deferred trigger should make `imbalanced_transactions` always 0; this recomputes
    it from the entries, so it also catches writes that bypassed the trigger (disabled
    triggers, `session_replication_role = replica`, a restore).
    """
    rows = await conn.fetch(
        """
        WITH by_currency AS (
            SELECT currency, sum(amount_minor) AS sum_minor, count(*) AS entries
            FROM entries GROUP BY currency
        ), tx AS (
            SELECT currency, count(*) AS transactions FROM transactions GROUP BY currency
        ), imbalanced AS (
            SELECT currency, count(*) AS imbalanced_transactions
            FROM (
                SELECT transaction_id, currency FROM entries
                GROUP BY transaction_id, currency HAVING sum(amount_minor) <> 0
            ) off
            GROUP BY currency
        )
        SELECT currency,
               coalesce(by_currency.sum_minor, 0) AS sum_minor,
               coalesce(tx.transactions, 0) AS transactions,
               coalesce(by_currency.entries, 0) AS entries,
               coalesce(imbalanced.imbalanced_transactions, 0) AS imbalanced_transactions
        FROM (SELECT currency FROM by_currency UNION SELECT currency FROM tx) currencies
        LEFT JOIN by_currency USING (currency)
        LEFT JOIN tx USING (currency)
        LEFT JOIN imbalanced USING (currency)
        ORDER BY currency
        """
    )
    return [
        CurrencyTrialBalance(
            currency=row["currency"],
            sum_minor=_int(row["sum_minor"]),
            transactions=row["transactions"],
            entries=row["entries"],
            imbalanced_transactions=row["imbalanced_transactions"],
        )
        for row in rows
    ]


# --- payouts ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayoutRun:
    id: uuid.UUID
    period: str
    as_of: datetime
    cutoff: datetime
    hold_seconds: float
    minimums: dict[str, int]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    seq: int
    id: uuid.UUID
    run_id: uuid.UUID
    period: str
    account_id: int
    owner_type: OwnerType
    owner_id: str
    currency: str
    amount_minor: int
    transaction_id: uuid.UUID
    created_at: datetime


async def lock_payout_runs(conn: asyncpg.Connection) -> None:
    """One run at a time (per schema), until the caller's transaction ends: two runs of
    different periods must not both pay the same balance."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('payout_run:' || current_schema()))")


async def database_now(conn: asyncpg.Connection) -> datetime:
    value: datetime = await conn.fetchval("SELECT now()")
    return value


async def payable_snapshots(conn: asyncpg.Connection, cutoff: datetime) -> list[PayableSnapshot]:
    """Every seller and creator payable: credits booked by the cutoff, all debits."""
    rows = await conn.fetch(
        "SELECT a.id, a.owner_type, a.owner_id, a.kind, a.currency,"
        " coalesce(sum(e.amount_minor) FILTER (WHERE e.amount_minor < 0 AND e.created_at <= $1),"
        " 0)::bigint AS held_credits,"
        " coalesce(sum(e.amount_minor) FILTER (WHERE e.amount_minor > 0), 0)::bigint AS debits"
        " FROM accounts a JOIN entries e ON e.account_id = a.id"
        " WHERE a.kind = 'payable' GROUP BY a.id ORDER BY a.id",
        cutoff,
    )
    return [
        PayableSnapshot(
            account_id=row["id"],
            account=_ref(row),
            held_credits_minor=row["held_credits"],
            debits_minor=row["debits"],
        )
        for row in rows
    ]


async def find_payout_run(conn: asyncpg.Connection, period: str) -> PayoutRun | None:
    row = await conn.fetchrow("SELECT * FROM payout_runs WHERE period = $1", period)
    return _payout_run(row) if row else None


async def record_payout_run(
    conn: asyncpg.Connection, run: PayoutRun, payouts: Sequence[PlannedPayout]
) -> None:
    """The run, its payouts and their ledger transactions, in the caller's transaction."""
    await conn.execute(
        "INSERT INTO payout_runs (id, period, as_of, cutoff, hold_seconds, minimums)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        run.id,
        run.period,
        run.as_of,
        run.cutoff,
        run.hold_seconds,
        run.minimums,
    )
    await record_transactions(conn, [(p.transaction, None) for p in payouts])
    await conn.executemany(
        "INSERT INTO payouts (id, run_id, period, account_id, owner_type, owner_id, currency,"
        " amount_minor, transaction_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            (
                p.id,
                run.id,
                p.period,
                p.account_id,
                p.account.owner_type.value,
                p.account.owner_id,
                p.account.currency,
                p.amount_minor,
                p.transaction.id,
            )
            for p in payouts
        ],
    )


async def list_payouts(
    conn: asyncpg.Connection,
    *,
    owner_type: OwnerType | None = None,
    owner_id: str | None = None,
    period: str | None = None,
    run_id: uuid.UUID | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[PayoutRecord]:
    rows = await conn.fetch(
        "SELECT * FROM payouts"
        " WHERE ($1::text IS NULL OR owner_type = $1) AND ($2::text IS NULL OR owner_id = $2)"
        " AND ($3::text IS NULL OR period = $3) AND ($4::uuid IS NULL OR run_id = $4)"
        " AND seq > $5 ORDER BY seq LIMIT $6",
        owner_type.value if owner_type else None,
        owner_id,
        period,
        run_id,
        after,
        limit,
    )
    return [
        PayoutRecord(
            seq=row["seq"],
            id=row["id"],
            run_id=row["run_id"],
            period=row["period"],
            account_id=row["account_id"],
            owner_type=OwnerType(row["owner_type"]),
            owner_id=row["owner_id"],
            currency=row["currency"],
            amount_minor=row["amount_minor"],
            transaction_id=row["transaction_id"],
            created_at=row["created_at"],
        )
        for row in rows
    ]


def _payout_run(row: asyncpg.Record) -> PayoutRun:
    return PayoutRun(
        id=row["id"],
        period=row["period"],
        as_of=row["as_of"],
        cutoff=row["cutoff"],
        hold_seconds=row["hold_seconds"],
        minimums=dict(row["minimums"]),
        created_at=row["created_at"],
    )


# --- row mapping ------------------------------------------------------------------------


def _ref_key(ref: AccountRef) -> tuple[str, str, str, str]:
    return (ref.owner_type.value, ref.owner_id, ref.kind.value, ref.currency)


def _columns(refs: list[AccountRef]) -> tuple[list[str], list[str], list[str], list[str]]:
    return (
        [ref.owner_type.value for ref in refs],
        [ref.owner_id for ref in refs],
        [ref.kind.value for ref in refs],
        [ref.currency for ref in refs],
    )


def _ref(row: asyncpg.Record) -> AccountRef:
    return AccountRef(
        OwnerType(row["owner_type"]), row["owner_id"], AccountKind(row["kind"]), row["currency"]
    )


def _shares(row: asyncpg.Record) -> Shares:
    return Shares(
        seller_proceeds=row["seller_proceeds_minor"],
        creator_commission=row["creator_commission_minor"],
        platform_fee=row["platform_fee_minor"],
    )


def _balance(row: asyncpg.Record) -> AccountBalance:
    return AccountBalance(
        id=row["id"],
        ref=_ref(row),
        balance_minor=row["balance_minor"],
        entry_count=row["entry_count"],
        created_at=row["created_at"],
    )


def _int(value: int | Decimal) -> int:
    # sum(bigint) is numeric in Postgres; every amount here is a whole number of units.
    return int(value)
