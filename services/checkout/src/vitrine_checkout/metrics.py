"""Checkout's own Prometheus metrics (the shared ones come from the runtime)."""

from __future__ import annotations

from prometheus_client import Counter

# result: placed, replayed, or the domain error code (out_of_stock, not_found, ...): a
# small fixed set, so the series stay bounded.
ORDER_REQUESTS = Counter(
    "vitrine_checkout_order_requests_total", "POST /orders outcomes", ["result"]
)
REFUND_REQUESTS = Counter(
    "vitrine_checkout_refund_requests_total", "POST /orders/{id}/refunds outcomes", ["result"]
)
