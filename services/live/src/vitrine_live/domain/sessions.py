"""What may happen to a live session, and the events that say it did."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from vitrine_live.domain.errors import ProductUnavailableError, SessionEndedError
from vitrine_live.domain.model import Product, Session, SessionStatus
from vitrine_runtime.errors import NotFoundError
from vitrine_schemas.events import (
    LiveEnded,
    LiveProductPinned,
    LiveProductUnpinned,
    LiveStarted,
    ProductStatus,
)


def start(session_id: str, creator_id: str, title: str, now: datetime) -> Session:
    return Session(
        session_id=session_id,
        creator_id=creator_id,
        title=title,
        status=SessionStatus.LIVE,
        started_at=now,
        ended_at=None,
    )


def require_live(session: Session, action: str) -> None:
    if not session.is_live:
        raise SessionEndedError(f"cannot {action}: live session {session.session_id} has ended")


def check_can_pin(session: Session, product_id: str, product: Product | None) -> None:
    """Only a live session pins, and only a product the catalog says is for sale."""
    require_live(session, f"pin {product_id}")
    if product is None:
        raise NotFoundError(f"product {product_id} not found")
    if product.status is not ProductStatus.ACTIVE:
        raise ProductUnavailableError(
            f"product {product_id} is {product.status.value} and cannot be pinned"
        )


def end(session: Session, now: datetime) -> tuple[Session, bool]:
    """The ended session, and whether this call ended it (False: it had ended already)."""
    if not session.is_live:
        return session, False
    return replace(session, status=SessionStatus.ENDED, ended_at=now), True


def refund_delta(recorded_minor: int, cumulative_minor: int, total_minor: int) -> int:
    """How much more of an order is refunded, given the cumulative total of a refund event.

    Cumulative totals make this order-insensitive: an older refund arriving after a newer
    one adds nothing, and the result never takes the refunds past the order's total.
    """
    return max(0, min(cumulative_minor, total_minor) - recorded_minor)


def started_event(session: Session) -> LiveStarted:
    return LiveStarted(
        session_id=session.session_id,
        creator_id=session.creator_id,
        title=session.title,
        started_at=session.started_at,
    )


def pinned_event(session: Session, product_id: str, now: datetime) -> LiveProductPinned:
    return LiveProductPinned(
        session_id=session.session_id,
        creator_id=session.creator_id,
        product_id=product_id,
        pinned_at=now,
    )


def unpinned_event(session: Session, product_id: str, now: datetime) -> LiveProductUnpinned:
    return LiveProductUnpinned(
        session_id=session.session_id,
        creator_id=session.creator_id,
        product_id=product_id,
        unpinned_at=now,
    )


def ended_event(session: Session) -> LiveEnded:
    assert session.ended_at is not None
    return LiveEnded(
        session_id=session.session_id, creator_id=session.creator_id, ended_at=session.ended_at
    )
