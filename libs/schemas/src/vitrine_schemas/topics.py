"""Topic registry: the single source of truth for topic creation (embedded, Strimzi, docs).

A topic carries the events of one entity whose order matters (an order's placement
before its refunds), keyed by that entity's id so they land on one partition.
Consumers skip event types they do not know, so adding an event type to a topic is
backwards compatible.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 60 * 60 * 1000

VIDEOS = "videos"
OBJECTS = "objects"
MATCHES = "matches"
PRODUCTS = "products"
ORDERS = "orders"
COMMISSIONS = "commissions"
LIVE_SESSIONS = "live-sessions"

DEAD_LETTER_PREFIX = "dlq."
CONSUMING_SERVICES = ("detector", "catalog", "checkout", "commission", "live")


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    key: str
    partitions: int
    retention_ms: int
    description: str
    event_types: tuple[str, ...] = ()
    cleanup_policy: str = "delete"


def dead_letter_topic(service: str) -> str:
    """Where a service parks the messages it could not handle."""
    return f"{DEAD_LETTER_PREFIX}{service}"


TOPICS: tuple[Topic, ...] = (
    Topic(
        VIDEOS,
        "video_id",
        4,
        7 * DAY_MS,
        "uploaded videos and their processing failures",
        ("video.uploaded", "video.consent_changed", "video.failed"),
    ),
    Topic(
        OBJECTS,
        "video_id",
        4,
        7 * DAY_MS,
        "objects tracked in videos, one event per track",
        ("objects.detected",),
    ),
    Topic(
        MATCHES,
        "video_id",
        4,
        30 * DAY_MS,
        "shoppable tags: tracked objects matched to products",
        ("product.matched",),
    ),
    Topic(
        PRODUCTS,
        "product_id",
        4,
        -1,
        "product snapshots; compacted, latest per product",
        ("catalog.product_upserted",),
        cleanup_policy="compact",
    ),
    Topic(
        ORDERS,
        "order_id",
        4,
        30 * DAY_MS,
        "order lifecycle",
        ("order.placed", "order.refunded"),
    ),
    Topic(
        COMMISSIONS,
        "order_id",
        4,
        30 * DAY_MS,
        "ledger postings per order",
        ("commission.accrued", "commission.reversed"),
    ),
    Topic(
        LIVE_SESSIONS,
        "session_id",
        4,
        7 * DAY_MS,
        "live selling sessions",
        ("live.started", "live.product_pinned", "live.product_unpinned", "live.ended"),
    ),
    *(
        Topic(
            dead_letter_topic(service),
            "original key",
            1,
            30 * DAY_MS,
            f"messages {service} could not handle, with the reason in headers",
        )
        for service in CONSUMING_SERVICES
    ),
)

TOPICS_BY_NAME: dict[str, Topic] = {topic.name: topic for topic in TOPICS}
