"""How checkout's projections treat incoming catalog snapshots."""

from __future__ import annotations

from vitrine_schemas.events import ProductUpserted


class ProjectionRejected(ValueError):
    """A snapshot checkout can never sell from; the handler dead-letters it."""


def check_sellable_snapshot(event: ProductUpserted) -> None:
    if event.price.amount_minor < 0:
        raise ProjectionRejected(
            f"product {event.product_id} v{event.version} has a negative price {event.price}"
        )
