"""Live's pure rules: pinning, ending, refund arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from live_helpers import T0

from vitrine_live.domain.errors import ProductUnavailableError, SessionEndedError
from vitrine_live.domain.model import Product, SessionStatus
from vitrine_live.domain.sessions import check_can_pin, end, ended_event, refund_delta, start
from vitrine_runtime.errors import NotFoundError
from vitrine_schemas.events import ProductStatus
from vitrine_schemas.money import Money

PRODUCT = Product("p1", "shop", "P", Money(amount_minor=1, currency="EUR"), ProductStatus.ACTIVE, 1)


def test_pin_needs_a_live_session_and_an_active_product() -> None:
    session = start("s1", "c1", "t", T0)
    check_can_pin(session, "p1", PRODUCT)
    with pytest.raises(NotFoundError):
        check_can_pin(session, "p1", None)
    archived = Product("p1", "shop", "P", PRODUCT.price, ProductStatus.ARCHIVED, 2)
    with pytest.raises(ProductUnavailableError, match="archived"):
        check_can_pin(session, "p1", archived)
    ended, _ = end(session, T0)
    with pytest.raises(SessionEndedError, match="has ended"):
        check_can_pin(ended, "p1", PRODUCT)


def test_end_is_idempotent() -> None:
    session = start("s1", "c1", "t", T0)
    ended, changed = end(session, T0)
    assert changed
    assert ended.status is SessionStatus.ENDED
    assert ended_event(ended).ended_at == T0
    again, changed_again = end(ended, T0.replace(hour=23))
    assert not changed_again
    assert again == ended


@given(st.integers(1, 10**12), st.lists(st.integers(0, 10**12), max_size=20))
def test_refunds_applied_in_any_order_land_on_the_largest_total(
    total: int, cumulative_totals: list[int]
) -> None:
    """Cumulative refund totals, delivered in any order and repeated, sum to the latest."""
    recorded = 0
    for cumulative in cumulative_totals:
        delta = refund_delta(recorded, cumulative, total)
        assert delta >= 0
        recorded += delta
        assert recorded <= total
    assert recorded == min(max(cumulative_totals, default=0), total)
