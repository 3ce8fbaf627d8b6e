"""The commission service's own Prometheus metrics (the shared ones live in the runtime)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

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
    "Sum of all ledger entries per currency when the trial balance was last read; must be 0",
    ["currency"],
)
