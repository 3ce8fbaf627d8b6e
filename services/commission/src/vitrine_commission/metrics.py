"""The commission service's own Prometheus metrics (the shared ones live in the runtime)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import Counter, Gauge

from vitrine_commission.adapters import repository
from vitrine_runtime.db import Database
from vitrine_runtime.metrics import PeriodicGauge

COMMISSION_ACCRUED = Counter(
    "vitrine_commission_accrued_minor",  # exposed as ..._total
    "Creator commission booked on sales, in the currency's minor units",
    ["currency"],
)
COMMISSION_REVERSED = Counter(
    "vitrine_commission_reversed_minor",  # exposed as ..._total
    "Creator commission clawed back by refunds, in the currency's minor units",
    ["currency"],
)
LEDGER_IMBALANCE = Gauge(
    "vitrine_ledger_imbalance_minor",
    "Sum of all ledger entries per currency at the last trial balance; must be 0",
    ["currency"],
)
LEDGER_IMBALANCED_TRANSACTIONS = Gauge(
    "vitrine_ledger_imbalanced_transactions",
    "Transactions whose entries do not sum to 0, at the last trial balance; must be 0",
    ["currency"],
)

# The trial balance scans every entry: often enough for an alert, rare enough to be cheap.
LEDGER_CHECK_INTERVAL_S = 15.0


def publish_trial_balance(rows: Iterable[repository.CurrencyTrialBalance]) -> None:
    for row in rows:
        LEDGER_IMBALANCE.labels(row.currency).set(row.sum_minor)
        LEDGER_IMBALANCED_TRANSACTIONS.labels(row.currency).set(row.imbalanced_transactions)


def ledger_balance_watch(
    database: Callable[[], Database], *, interval_s: float = LEDGER_CHECK_INTERVAL_S
) -> PeriodicGauge:
    """Recompute the trial balance on a timer, so the imbalance alert needs no reader."""

    async def refresh() -> None:
        async with (
            database().pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await repository.trial_balance(conn)
        publish_trial_balance(rows)

    return PeriodicGauge("ledger-balance", refresh, interval_s=interval_s)
