"""Refunds: any amount up to what is left, in the order's currency, cumulative."""

from __future__ import annotations

from datetime import datetime

from vitrine_checkout.domain.errors import RefundNotAllowedError
from vitrine_checkout.domain.model import Order, Refund
from vitrine_runtime.errors import InvalidRequestError
from vitrine_schemas.events import OrderRefunded
from vitrine_schemas.money import Money


def plan_refund(
    order: Order,
    *,
    refund_id: str,
    amount_minor: int | None,
    reason: str,
    refunded_at: datetime,
) -> Refund:
    """The next refund of `order`: `amount_minor` or, if None, everything still refundable."""
    remaining = order.refundable
    if remaining.amount_minor <= 0:
        raise RefundNotAllowedError(f"order {order.order_id} is already fully refunded")
    if amount_minor is None:
        amount = remaining
    else:
        if amount_minor <= 0:
            raise InvalidRequestError("amount_minor must be positive")
        amount = Money(amount_minor=amount_minor, currency=order.total.currency)
        if amount.amount_minor > remaining.amount_minor:
            raise RefundNotAllowedError(
                f"refund of {amount} exceeds the {remaining} still refundable on order"
                f" {order.order_id}"
            )
    return Refund(
        refund_id=refund_id,
        order_id=order.order_id,
        amount=amount,
        refunded_total=order.refunded + amount,
        reason=reason,
        refunded_at=refunded_at,
    )


def order_refunded_event(order: Order, refund: Refund) -> OrderRefunded:
    return OrderRefunded(
        order_id=order.order_id,
        refund_id=refund.refund_id,
        amount=refund.amount,
        refunded_total=refund.refunded_total,
        order_total=order.total,
        reason=refund.reason,
        refunded_at=refund.refunded_at,
    )
