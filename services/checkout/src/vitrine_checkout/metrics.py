"""Checkout's own Prometheus metrics (the shared ones come from the runtime)."""

from __future__ import annotations

from prometheus_client import Counter

from vitrine_schemas.money import Money

# result: placed, replayed, or the domain error code (out_of_stock, not_found, ...): a
# small fixed set, so the series stay bounded.
ORDER_REQUESTS = Counter(
    "vitrine_checkout_order_requests_total", "POST /orders outcomes", ["result"]
)
REFUND_REQUESTS = Counter(
    "vitrine_checkout_refund_requests_total", "POST /orders/{id}/refunds outcomes", ["result"]
)
# Business throughput, by ISO 4217 code (a bounded set). GMV is gross merchandise value
# in the currency's minor units, so sums stay exact; divide by 10^digits to display.
ORDERS_PLACED = Counter(
    "vitrine_orders_placed_total", "Orders placed (new, not idempotent replays)", ["currency"]
)
GMV = Counter(
    "vitrine_gmv_minor",  # exposed as vitrine_gmv_minor_total
    "Gross merchandise value of placed orders, in the currency's minor units",
    ["currency"],
)


def record_order_placed(total: Money) -> None:
    """Count a newly placed order; call once per order, after its transaction commits."""
    ORDERS_PLACED.labels(total.currency).inc()
    GMV.labels(total.currency).inc(total.amount_minor)
