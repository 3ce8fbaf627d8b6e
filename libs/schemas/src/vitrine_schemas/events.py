"""Payloads of every Vitrine event. Each names its type, schema version and topic.

Compatibility rule (enforced by libs/schemas/tests/test_contracts.py against the files in
libs/schemas/jsonschema/): within
one schema version, fields may be added only as optional; removing, retyping or making a
field required needs a new `schema_version`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, model_validator

from vitrine_schemas import topics
from vitrine_schemas.envelope import Contract, Event
from vitrine_schemas.money import BasisPoints, Money

Id = Annotated[str, Field(min_length=1, max_length=128)]
Milliseconds = Annotated[int, Field(ge=0)]
Score = Annotated[float, Field(ge=-1.0, le=1.0)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
CommissionRate = Annotated[
    int, Field(ge=100, le=8000, description="creator commission, 100..8000 bp (1-80 %)")
]


# --- videos -------------------------------------------------------------------------


class VideoUploaded(Event):
    """A creator uploaded a video; the detector makes it shoppable if consent is on."""

    event_type: ClassVar[str] = "video.uploaded"
    topic: ClassVar[str] = topics.VIDEOS
    partition_field: ClassVar[str] = "video_id"

    video_id: Id
    creator_id: Id
    media_uri: str = Field(min_length=1, description="location of the video in the media store")
    identify_products: bool = Field(
        description="creator's consent to 'identify similar products' in this video"
    )


class VideoConsentChanged(Event):
    """The creator switched 'identify similar products' on or off for an uploaded video."""

    event_type: ClassVar[str] = "video.consent_changed"
    topic: ClassVar[str] = topics.VIDEOS
    partition_field: ClassVar[str] = "video_id"

    video_id: Id
    creator_id: Id
    media_uri: str = Field(min_length=1, description="location of the video in the media store")
    identify_products: bool = Field(
        description="creator's consent to 'identify similar products' in this video, now"
    )


class VideoFailed(Event):
    """A video could not be processed; `reason` says why in words an operator can act on."""

    event_type: ClassVar[str] = "video.failed"
    topic: ClassVar[str] = topics.VIDEOS
    partition_field: ClassVar[str] = "video_id"

    video_id: Id
    creator_id: Id
    reason_code: str = Field(min_length=1, examples=["corrupt", "too_long", "outside_store"])
    reason: str = Field(min_length=1)


class BoundingBox(Contract):
    """A box in normalised image coordinates (0..1), at one moment of the video."""

    at_ms: Milliseconds
    x: Unit
    y: Unit
    width: Unit
    height: Unit


class CropRef(Contract):
    """One crop of a tracked object, stored in the media store."""

    uri: str = Field(min_length=1)
    at_ms: Milliseconds
    quality: Unit = Field(description="how good a view this crop is (sharpness, size)")


class ObjectsDetected(Event):
    """One tracked object in a video: its time span, boxes and best crops."""

    event_type: ClassVar[str] = "objects.detected"
    topic: ClassVar[str] = topics.OBJECTS
    partition_field: ClassVar[str] = "video_id"

    video_id: Id
    creator_id: Id
    track_id: Id
    label: str = Field(min_length=1, description="detector class name")
    confidence: Unit
    first_seen_ms: Milliseconds
    last_seen_ms: Milliseconds
    boxes: list[BoundingBox] = Field(default_factory=list)
    crops: list[CropRef] = Field(min_length=1)

    @model_validator(mode="after")
    def _span_in_order(self) -> ObjectsDetected:
        if self.last_seen_ms < self.first_seen_ms:
            raise ValueError("last_seen_ms is before first_seen_ms")
        return self


class ProductMatched(Event):
    """A tracked object in a video was matched to a catalog product: a shoppable tag."""

    event_type: ClassVar[str] = "product.matched"
    topic: ClassVar[str] = topics.MATCHES
    partition_field: ClassVar[str] = "video_id"

    video_id: Id
    creator_id: Id
    track_id: Id
    product_id: Id
    shop_id: Id
    score: Score
    first_seen_ms: Milliseconds
    last_seen_ms: Milliseconds


# --- catalog ------------------------------------------------------------------------


class ShopKind(StrEnum):
    THIRD_PARTY = "third_party"
    FIRST_PARTY = "first_party"


class ProductStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class ProductUpserted(Event):
    """A product was created or changed. `version` grows with every change."""

    event_type: ClassVar[str] = "catalog.product_upserted"
    topic: ClassVar[str] = topics.PRODUCTS
    partition_field: ClassVar[str] = "product_id"

    product_id: Id
    shop_id: Id
    seller_id: Id
    shop_kind: ShopKind
    title: str = Field(min_length=1)
    price: Money
    stock: int = Field(ge=0, description="units the seller declared available, absolute")
    stock_version: int = Field(
        ge=1,
        description="grows only when the seller sets stock; checkout resets its available"
        " count only for a newer stock_version, so other edits never undo sales",
    )
    commission_bps: CommissionRate
    status: ProductStatus
    version: int = Field(ge=1)
    image_count: int = Field(ge=0)


# --- orders -------------------------------------------------------------------------


class AttributionSource(StrEnum):
    AUTO_IDENTIFIED = "auto_identified"
    CREATOR_TAGGED = "creator_tagged"
    LIVE = "live"
    NONE = "none"


class Attribution(Contract):
    """Where a sale came from, and the creator it is credited to."""

    source: AttributionSource
    creator_id: Id | None = None
    video_id: Id | None = None
    live_session_id: Id | None = None


class OrderLine(Contract):
    """One product of an order, with the price and commission rate frozen when placed."""

    product_id: Id
    title: str
    quantity: int = Field(ge=1)
    unit_price: Money
    commission_bps: CommissionRate = Field(description="seller's rate, frozen at order time")


class OrderPlaced(Event):
    """An order was placed and paid; rates on it are frozen for its whole life."""

    event_type: ClassVar[str] = "order.placed"
    topic: ClassVar[str] = topics.ORDERS
    partition_field: ClassVar[str] = "order_id"

    order_id: Id
    buyer_id: Id
    shop_id: Id
    seller_id: Id
    shop_kind: ShopKind
    lines: list[OrderLine] = Field(min_length=1)
    total: Money
    platform_fee_bps: BasisPoints = Field(description="platform fee, frozen at order time")
    attribution: Attribution
    placed_at: AwareDatetime

    @model_validator(mode="after")
    def _rates_within_the_whole(self) -> OrderPlaced:
        for line in self.lines:
            if line.commission_bps + self.platform_fee_bps > 10_000:
                raise ValueError(
                    f"{line.product_id}: commission {line.commission_bps} bp and platform fee"
                    f" {self.platform_fee_bps} bp exceed 100 %"
                )
        return self


class OrderRefunded(Event):
    """Part or all of an order was refunded. `refunded_total` is cumulative."""

    event_type: ClassVar[str] = "order.refunded"
    topic: ClassVar[str] = topics.ORDERS
    partition_field: ClassVar[str] = "order_id"

    order_id: Id
    refund_id: Id
    amount: Money
    refunded_total: Money
    order_total: Money
    reason: str = ""
    refunded_at: AwareDatetime


# --- commission ---------------------------------------------------------------------


class CommissionAccrued(Event):
    """A sale was booked in the ledger: how the buyer's payment was split."""

    event_type: ClassVar[str] = "commission.accrued"
    topic: ClassVar[str] = topics.COMMISSIONS
    partition_field: ClassVar[str] = "order_id"

    order_id: Id
    transaction_id: Id
    shop_id: Id
    creator_id: Id | None
    gross: Money
    seller_proceeds: Money
    creator_commission: Money
    platform_fee: Money


class CommissionReversed(Event):
    """A refund was booked: the shares clawed back, at the order's frozen rates."""

    event_type: ClassVar[str] = "commission.reversed"
    topic: ClassVar[str] = topics.COMMISSIONS
    partition_field: ClassVar[str] = "order_id"

    order_id: Id
    refund_id: Id
    transaction_id: Id
    shop_id: Id
    creator_id: Id | None
    refund_amount: Money
    seller_proceeds_reversed: Money
    creator_commission_reversed: Money
    platform_fee_reversed: Money


# --- live ---------------------------------------------------------------------------


class LiveStarted(Event):
    """A creator went live to sell; sales in the session are attributed to it."""

    event_type: ClassVar[str] = "live.started"
    topic: ClassVar[str] = topics.LIVE_SESSIONS
    partition_field: ClassVar[str] = "session_id"

    session_id: Id
    creator_id: Id
    title: str
    started_at: AwareDatetime


class LiveProductPinned(Event):
    """A product was pinned in a live session: viewers see it and can buy it."""

    event_type: ClassVar[str] = "live.product_pinned"
    topic: ClassVar[str] = topics.LIVE_SESSIONS
    partition_field: ClassVar[str] = "session_id"

    session_id: Id
    creator_id: Id
    product_id: Id
    pinned_at: AwareDatetime


class LiveProductUnpinned(Event):
    """A product was taken off a live session's pins."""

    event_type: ClassVar[str] = "live.product_unpinned"
    topic: ClassVar[str] = topics.LIVE_SESSIONS
    partition_field: ClassVar[str] = "session_id"

    session_id: Id
    creator_id: Id
    product_id: Id
    unpinned_at: AwareDatetime


class LiveEnded(Event):
    """A live session ended; it takes no more attributed sales."""

    event_type: ClassVar[str] = "live.ended"
    topic: ClassVar[str] = topics.LIVE_SESSIONS
    partition_field: ClassVar[str] = "session_id"

    session_id: Id
    creator_id: Id
    ended_at: AwareDatetime


ALL_EVENTS: tuple[type[Event], ...] = (
    VideoUploaded,
    VideoConsentChanged,
    VideoFailed,
    ObjectsDetected,
    ProductMatched,
    ProductUpserted,
    OrderPlaced,
    OrderRefunded,
    CommissionAccrued,
    CommissionReversed,
    LiveStarted,
    LiveProductPinned,
    LiveProductUnpinned,
    LiveEnded,
)

EVENTS_BY_TYPE: dict[str, type[Event]] = {cls.event_type: cls for cls in ALL_EVENTS}
