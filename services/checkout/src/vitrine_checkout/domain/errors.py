"""Checkout's domain errors; the runtime maps each base class to its HTTP status and shows
`code` and the message to the caller."""

from __future__ import annotations

from vitrine_runtime.errors import ConflictError, InvalidRequestError


class OutOfStockError(ConflictError):
    """A line asks for more units than are left; nothing was reserved."""

    code = "out_of_stock"


class ProductUnavailableError(ConflictError):
    """The product exists but is not for sale (archived)."""

    code = "product_unavailable"


class SessionNotLiveError(ConflictError):
    """A live-attributed order names a session that has ended."""

    code = "session_not_live"


class IdempotencyKeyReusedError(ConflictError):
    """An Idempotency-Key came back with a different request."""

    code = "idempotency_key_reused"


class RefundNotAllowedError(ConflictError):
    """The refund asks for more than is left to refund."""

    code = "refund_exceeds_remaining"


class MixedOrderError(InvalidRequestError):
    """One order may hold one shop's products, in one currency."""

    code = "mixed_order"


class AttributionError(InvalidRequestError):
    code = "invalid_attribution"
