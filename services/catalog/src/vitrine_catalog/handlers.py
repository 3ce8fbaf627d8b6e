"""Event handlers of the catalog (broker adapter): each runs once per event, in a transaction."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from vitrine_catalog.application import Catalog
from vitrine_runtime.consumer import EventConsumer
from vitrine_runtime.logging import get_logger
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import ObjectsDetected, ProductStatus, ProductUpserted

log = get_logger(__name__)


def register(consumer: EventConsumer, catalog: Callable[[], Catalog]) -> None:
    """Register handlers; `catalog` gives the started catalog when an event arrives."""

    @consumer.on(ObjectsDetected)
    async def on_objects_detected(
        envelope: Envelope[ObjectsDetected], conn: asyncpg.Connection
    ) -> None:
        decision = await catalog().match_track(conn, envelope.data)
        log.info(
            "track_judged",
            video_id=envelope.data.video_id,
            track_id=envelope.data.track_id,
            product_id=decision.product_id if decision else None,
            score=round(decision.score, 4) if decision else None,
        )

    @consumer.on(ProductUpserted)
    async def on_product_upserted(
        envelope: Envelope[ProductUpserted], conn: asyncpg.Connection
    ) -> None:
        """The catalog consumes its own product events: durable, ordered per product and
        deduplicated like any other, so the back catalog is re-matched exactly once."""
        product = envelope.data
        if product.status is not ProductStatus.ACTIVE or product.image_count == 0:
            return
        tagged = await catalog().rematch_product(conn, product.product_id)
        log.info(
            "product_rematched",
            product_id=product.product_id,
            version=product.version,
            new_tags=[f"{ref.video_id}/{ref.track_id}" for ref, _ in tagged],
        )
